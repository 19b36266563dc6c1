"""The plain state every pkgcache addon shares: one set of counters, one file server, one table of downloads.

Addons receive this object when the suite is assembled (proxy/suite.py)
instead of reaching for module globals, so tests can build several independent
suites in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pkgcache_suite.stats import Stats
from pkgcache_suite.transfer.fileserver import FileServer
from pkgcache_suite.transfer.flight import Flight
from pkgcache_suite.transfer.resolver import Resolver


@dataclass
class CacheContext:
    """Plain shared state: process flags, the counters, the loopback file server, the downloads in flight.
    Services with a life cycle (the store, the wanted list) belong to their addons and are handed in."""

    fail_fast: bool = False  # a bad option at start ends the process with one line (the mitmdump script)
    started: bool = False  # the proxy is running: a bad option is refused, the old value kept
    inspecting: bool = False  # running under mitmweb: flows are looked at, streamed misses show their bodies
    stats: Stats = field(default_factory=Stats)
    fileserver: FileServer = field(default_factory=FileServer)
    flights: dict[str, Flight] = field(default_factory=dict)
    resolver: Resolver = field(default_factory=Resolver)  # cached name lookups for destination checks
    used: dict[str, float] = field(default_factory=dict)  # key -> last served from the cache, not yet written
