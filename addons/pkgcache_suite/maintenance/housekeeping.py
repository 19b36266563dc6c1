"""The proxy's own upkeep: at start, make the tree agree with the index and learn what cached indexes
list; then, soon and every few minutes, remove what interrupted downloads left behind.  Every second, write
the counters, so the report of any process sharing the cache root sees this one's traffic."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pkgcache_suite.background import Tasks
from pkgcache_suite.maintenance.tasks import record_all_refs
from pkgcache_suite.maintenance.evict import enforce_max_size
from pkgcache_suite.stats import FLUSH_EVERY
from pkgcache_suite.storage import CacheStore, reconcile, sweep_partials
from pkgcache_suite.units import human_size

if TYPE_CHECKING:
    from pkgcache_suite.context import CacheContext

log = logging.getLogger("pkgcache")

INTERVAL = 300.0
SIZE_CHECK = 300.0  # how often the cache is recounted for the size limit
SOON = 5.0  # a second sweep shortly after start catches leftovers too young for the first


class Housekeeping:
    def __init__(self, shared: CacheContext) -> None:
        self.c = shared
        self.tasks = Tasks()
        self._task: asyncio.Task[None] | None = None
        self._size: int | None = None  # the cache's size at the last check (None: not known, or no limit)
        self._grown = 0  # bytes committed since
        self._over = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = self.tasks.start(self._run(), "housekeeping")
            self.tasks.start(self._write_counters(), "counters")
            self._over.set()  # a first count at start
            self.tasks.start(self._keep_size(), "size limit")

    def stop(self) -> None:
        self.tasks.cancel_all()

    async def _write_counters(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                self.flush()
            except Exception:
                log.exception("pkgcache: writing the counters failed")

    def flush(self) -> None:
        """Counters and last-use times go to disk, where other processes and the next start see them."""
        self.c.stats.flush()
        store, used = self.c.store, self.c.used
        if store is not None and used:
            self.c.used = {}
            store.note_used(used)

    def note_stored(self, length: int) -> None:
        """A body was committed: past the size limit, eviction starts now rather than at the next check."""
        self._grown += length
        s = self.c.settings
        if s is not None and s.max_size and self._size is not None and self._size + self._grown > s.max_size:
            self._over.set()

    async def _keep_size(self) -> None:
        """Evict when a commit takes the cache past pkgcache_max_size, and recount every SIZE_CHECK seconds
        (other processes sharing the root store files too)."""
        while True:
            try:
                await asyncio.wait_for(self._over.wait(), SIZE_CHECK)
            except (asyncio.TimeoutError, TimeoutError):
                pass
            self._over.clear()
            store, s = self.c.store, self.c.settings
            if store is None or s is None or not s.max_size:
                self._size = None
                continue
            self._grown = 0
            try:
                res = await asyncio.to_thread(enforce_max_size, store, s.max_size)
            except Exception:
                log.exception("pkgcache: keeping the cache under pkgcache_max_size failed")
                continue
            self._size = res.size_before - res.freed
            if res.deleted:
                log.info("pkgcache: cache was %s, over pkgcache_max_size=%s: removed %d least recently used files "
                         "(%s)", human_size(res.size_before), human_size(s.max_size), len(res.deleted),
                         human_size(res.freed))

    async def _run(self) -> None:
        first = True
        while True:
            store = self.c.store
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
