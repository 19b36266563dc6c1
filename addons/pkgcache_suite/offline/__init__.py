"""Offline mode: reachability, the wanted list, datastores, imports, USB sticks, and `pkgcache fetch`."""
