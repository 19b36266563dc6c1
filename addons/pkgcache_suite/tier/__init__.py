"""The production tier: HAProxy and nginx in front of N pkgcache workers (pkgcache serve --workers N)."""
