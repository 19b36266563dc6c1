"""Assemble the addon suite, in hook order, handing each addon the collaborators it uses."""

from __future__ import annotations

from typing import Any

from pkgcache_suite.context import CacheContext
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.proxy.boundary import MarkOwnAnswers, StripEngineHeaders
from pkgcache_suite.proxy.cache import CacheCore
from pkgcache_suite.proxy.defaults import ImpliedOptions
from pkgcache_suite.proxy.offline import OfflineAddon
from pkgcache_suite.proxy.router import Router
from pkgcache_suite.proxy.storeaddon import StoreAddon


def build_addons(shared: CacheContext | None = None, fail_fast: bool = False) -> list[Any]:
    """fail_fast: a bad option at start stops the process with one line (what the mitmdump script wants)."""
    shared = shared or CacheContext()
    shared.fail_fast = fail_fast
    reach = Reachability()  # what is known of upstream: the router's failover and the cache's offline answers
    router = Router(shared, reach)
    storage = StoreAddon(shared)
    offline = OfflineAddon(shared, storage.opened, reach, router)
    core = CacheCore(shared, storage.opened, reach, offline, router)
    # Hook order:
    # - the boundary first and last: upstream responses are cleaned before any addon looks, and answers the
    #   suite made itself are marked after all of them have decided (proxy/boundary.py);
    # - Router before CacheCore: its request hook decides access and where a request goes before the cache looks;
    # - StoreAddon after the addons that use the store: every addon is configured before the first request
    #   whatever the order, and at exit their done() (downloads given up, counters written) runs before the
    #   store is closed;
    # - ImpliedOptions after the addons whose settings imply other options (proxy/defaults.py).
    return [StripEngineHeaders(), router, core, offline, storage, ImpliedOptions(router), MarkOwnAnswers()]
