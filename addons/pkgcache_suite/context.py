"""The state every pkgcache addon shares: one store, one classifier, one set of counters.

Addons receive this object when the suite is assembled (addons/pkgcache.py)
instead of reaching for module globals, so tests can build several independent
suites in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pkgcache_suite.transfer.resolver import Resolver
from pkgcache_suite.transfer.fileserver import FileServer
from pkgcache_suite.transfer.flight import Flight
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.settings import Settings
from pkgcache_suite.stats import Stats
from pkgcache_suite.storage import CacheStore
from pkgcache_suite.policy.cachekey import key_for_url
from pkgcache_suite.offline.wanted import WantedList


@dataclass
class CacheContext:
    settings: Settings | None = None
    fail_fast: bool = False  # a bad option at start ends the process with one line (the mitmdump script)
    started: bool = False  # the proxy is running: a bad option is refused, the old value kept
    inspecting: bool = False  # running under mitmweb: flows are looked at, streamed misses show their bodies
    store: CacheStore | None = None
    classifier: Classifier | None = None
    stats: Stats = field(default_factory=Stats)
    fileserver: FileServer = field(default_factory=FileServer)
    flights: dict[str, Flight] = field(default_factory=dict)
    reachability: Reachability | None = None  # set by the offline addon
    wanted: WantedList | None = None  # set by the offline addon
    admin_auth: str | None = None  # "user:password" for state-changing report actions, set by the router
    resolver: Resolver = field(default_factory=Resolver)  # cached name lookups for destination checks
    used: dict[str, float] = field(default_factory=dict)  # key -> last served from the cache, not yet written
    info_sources: list = field(default_factory=list)  # callables adding to the report's facts
    # url -> cache key as the proxy would file it (remapped repositories share one namespace); set by the router
    key_of: Callable[[str], str] = key_for_url
