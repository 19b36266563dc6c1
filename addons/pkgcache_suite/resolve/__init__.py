"""Resolvers for stated requests: which packages and indexes a Debian or RPM install needs, computed on the connected machine."""
