"""The state every pkgcache addon shares: one store, one classifier, one set of counters.

Addons receive this object when the suite is assembled (addons/pkgcache.py)
instead of reaching for module globals, so tests can build several independent
suites in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .destinations import Resolver
from .fileserver import FileServer
from .flight import Flight
from .reachability import Reachability
from .rules import Classifier
from .settings import Settings
from .stats import Stats
from .store import CacheStore
from .urlmap import key_for_url
from .wanted import WantedList


@dataclass
class CacheContext:
    settings: Settings | None = None
    store: CacheStore | None = None
    classifier: Classifier | None = None
    stats: Stats = field(default_factory=Stats)
    fileserver: FileServer = field(default_factory=FileServer)
    flights: dict[str, Flight] = field(default_factory=dict)
    reachability: Reachability | None = None  # set by the offline addon
    wanted: WantedList | None = None  # set by the offline addon
    admin_auth: str | None = None  # "user:password" for state-changing report actions, set by the router
    resolver: Resolver = field(default_factory=Resolver)  # cached name lookups for destination checks
    info_sources: list = field(default_factory=list)  # callables adding to the report's facts
    # url -> cache key as the proxy would file it (remapped repositories share one namespace); set by the router
    key_of: Callable[[str], str] = key_for_url
