"""The whole addon suite under mitmproxy's taddons: no sockets, every collaborator as the proxy has it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mitmproxy.test import taddons

from pkgcache_suite.proxy.cache import CacheCore
from pkgcache_suite.proxy.storeaddon import StoreAddon
from pkgcache_suite.proxy.suite import build_addons


@contextmanager
def cache_suite(**opts: str) -> Iterator[tuple[CacheCore, taddons.context]]:
    """The suite configured with opts (pkgcache_dir among them); the store is closed at the end.  Upstream
    counts as reachable (pkgcache_offline=off) unless opts say otherwise: no hook test has a network."""
    addons = build_addons()
    with taddons.context(*addons) as tctx:
        tctx.options.update(**{"pkgcache_offline": "off", **opts})
        core = next(a for a in addons if isinstance(a, CacheCore))
        try:
            yield core, tctx
        finally:
            next(a for a in addons if isinstance(a, StoreAddon)).done()
