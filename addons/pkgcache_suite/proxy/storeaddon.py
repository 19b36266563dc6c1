"""The store addon: owns the cache's settings, its store and its classifier.

It parses the cache's options (settings/table.py), opens the store and builds
the classifier in ``configure()``, and closes the store in ``done()``.  The
other addons are handed its ``opened`` object when the suite is assembled and read its
properties (:class:`OpenStore`), which are never None once the proxy runs: mitmproxy configures
every addon before the first request, and a store that cannot be opened stops
the start with one line.  It sits after the addons that use the store in the
chain, so their ``done()`` (downloads given up, counters written) runs while
the store is still open.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx

from pkgcache_suite.context import CacheContext
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.proxy import options
from pkgcache_suite.settings import Settings, parse_section
from pkgcache_suite.settings.table import names
from pkgcache_suite.storage import PRIVATE, CacheStore, StoreError

log = logging.getLogger("pkgcache")

_MINE = names(Settings.SECTION)


class NotOpen(RuntimeError):
    """The store was asked for before mitmproxy configured the suite (a bug, never a user's error)."""


class OpenStore:
    """The open store, its classifier and its settings, as the store addon last configured them.

    A plain object, not an addon: mitmproxy reads every attribute of an addon when it loads it, and these
    properties refuse to be read before the first configure()."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: CacheStore | None = None
        self._classifier: Classifier | None = None

    @property
    def is_open(self) -> bool:
        return self._store is not None and self._classifier is not None and self._settings is not None

    @property
    def store(self) -> CacheStore:
        if self._store is None:
            raise NotOpen("the cache store is not open yet")
        return self._store

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            raise NotOpen("the classifier is not built yet")
        return self._classifier

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise NotOpen("the cache's options are not parsed yet")
        return self._settings


class StoreAddon:
    def __init__(self, shared: CacheContext) -> None:
        self.c = shared
        self.opened = OpenStore()

    def load(self, loader: Any) -> None:
        options.declare(loader, Settings.SECTION)
        options.refuse_repeated(ctx.options, self.c.fail_fast)

    def configure(self, updated: set[str]) -> None:
        """Parse only what changed; the store and the classifier are rebuilt only when their options did."""
        if not updated & _MINE:
            return
        if not self.c.started:
            options.refuse_unknown(ctx.options, self.c.fail_fast)  # every addon of the suite has loaded by now
        try:
            o = self.opened
            s = parse_section(Settings, ctx.options, updated, o._settings)
            classifier = o._classifier
            if classifier is None or updated & {"pkgcache_rules", "pkgcache_filter"}:
                classifier = Classifier(s.rules_dir, s.filter_file)
            store = None
            if o._store is None or o._store.root != s.cache_dir:
                try:
                    store = CacheStore(s.cache_dir)
                except StoreError as e:
                    raise ValueError(f"pkgcache_dir={str(s.cache_dir)!r}: {e}") from None
        except ValueError as e:  # RulesError is one too
            options.reject(e, self.c.fail_fast, self.c.started)
        if store is not None:
            if o._store is not None:
                o._store.close()
            o._store = store
            self.c.stats.attach(store.root / PRIVATE)
            log.info("pkgcache: cache at %s", s.cache_dir)
        o._settings, o._classifier = s, classifier

    def done(self) -> None:
        self.c.stats.close()
        if self.opened._store is not None:
            self.opened._store.close()
