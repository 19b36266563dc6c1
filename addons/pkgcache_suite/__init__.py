"""pkgcache: a caching, offline-capable proxy for package managers, as mitmproxy addons."""

__version__ = "0.1.0"
