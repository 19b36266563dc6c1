"""The proxy's own upkeep: at start, make the tree agree with the index and learn what cached indexes
list; then, soon and every few minutes, remove what interrupted downloads left behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pkgcache_suite.background import Tasks
from pkgcache_suite.maintenance.tasks import record_all_refs
from pkgcache_suite.storage import CacheStore, reconcile, sweep_partials

log = logging.getLogger("pkgcache")

INTERVAL = 300.0
SOON = 5.0  # a second sweep shortly after start catches leftovers too young for the first


class Housekeeping:
    def __init__(self, store: Callable[[], CacheStore | None]) -> None:
        self._store = store
        self.tasks = Tasks()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = self.tasks.start(self._run(), "housekeeping")

    def stop(self) -> None:
        self.tasks.cancel_all()

    async def _run(self) -> None:
        first = True
        while True:
            store = self._store()
            if store is not None:
                try:
                    await self.round(store, first)
                except Exception:
                    log.exception("pkgcache: housekeeping failed")
            await asyncio.sleep(SOON if first else INTERVAL)
            first = False

    @staticmethod
    async def round(store: CacheStore, first: bool) -> None:
        if first:
            if not len(store.refs):
                await asyncio.to_thread(record_all_refs, store)
            counts = await asyncio.to_thread(reconcile, store)
            if any(counts.values()):
                log.info("pkgcache: cache tree checked against its index: %s", counts)
        removed = await asyncio.to_thread(sweep_partials, store)
        if removed:
            log.info("pkgcache: removed %d leftovers of interrupted downloads", len(removed))
