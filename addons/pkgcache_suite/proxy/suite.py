"""Assemble the addon suite around one shared CacheContext, in hook order."""

from __future__ import annotations

from typing import Any

from pkgcache_suite.context import CacheContext
from pkgcache_suite.proxy.boundary import MarkOwnAnswers, StripEngineHeaders
from pkgcache_suite.proxy.cache import CacheCore
from pkgcache_suite.proxy.defaults import ImpliedOptions
from pkgcache_suite.proxy.offline import OfflineAddon
from pkgcache_suite.proxy.router import Router


def build_addons(shared: CacheContext | None = None, fail_fast: bool = False) -> list[Any]:
    """fail_fast: a bad option at start stops the process with one line (what the mitmdump script wants)."""
    shared = shared or CacheContext()
    shared.fail_fast = fail_fast
    # Router first: its request hook decides access and where a request goes before the cache looks at it.
    # CacheCore before OfflineAddon: its configure() builds the store the offline addon uses.
    # The boundary around them: upstream responses are cleaned before any of them looks, and answers they
    # made themselves are marked after all of them have decided (proxy/boundary.py).
    # ImpliedOptions after the addons whose settings imply other options (proxy/defaults.py).
    router = Router(shared)
    shared.info_sources.append(router.info)
    return [StripEngineHeaders(), router, CacheCore(shared), OfflineAddon(shared), ImpliedOptions(router),
            MarkOwnAnswers()]
