"""The proxy's own upkeep: after a process serving the cache died mid-run (or on a cache this version has not
checked), make the tree agree with the index and learn what cached indexes list, in a child process at low
priority (maintenance/offloop.py), so a start costs the same whatever the cache's size; then, soon and every
few minutes, remove what interrupted downloads left behind.  Every second, write the counters, so the report
of any process sharing the cache root sees this one's traffic."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pkgcache_suite.background import Tasks
from pkgcache_suite.maintenance import offloop
from pkgcache_suite.maintenance.evict import enforce_max_size
from pkgcache_suite.stats import FLUSH_EVERY
from pkgcache_suite.storage import CacheStore, sweep_partials
from pkgcache_suite.storage.liveness import Liveness
from pkgcache_suite.storage.private import PRIVATE
from pkgcache_suite.units import human_size

if TYPE_CHECKING:
    from pkgcache_suite.context import CacheContext
    from pkgcache_suite.storage.opened import OpenedStore

log = logging.getLogger("pkgcache")

INTERVAL = 300.0
SIZE_CHECK = 300.0  # how often the size limit is looked at without a commit of this process (others store too)
SOON = 5.0  # a second sweep shortly after start catches leftovers too young for the first
CHECK_LOCK = ".check"  # no cache key starts with a dot: the lock of the one process checking the cache
COUNT_LOCK = ".count"  # ... and of the one counting a cache an older version wrote


class Housekeeping:
    def __init__(self, shared: CacheContext, storage: OpenedStore) -> None:
        self.c, self.storage = shared, storage
        self.tasks = Tasks()
        self._task: asyncio.Task[None] | None = None
        self._over = asyncio.Event()
        self.liveness: Liveness | None = None
        self.needs_check = False

    def start(self) -> None:
        if self._task is None:
            self._register()
            self._task = self.tasks.start(self._run(), "housekeeping")
            self.tasks.start(self._write_counters(), "counters")
            self._over.set()  # a first count at start
            self.tasks.start(self._keep_size(), "size limit")

    def _register(self) -> None:
        store = self.storage.store
        self.liveness = Liveness(store.root / PRIVATE)
        try:
            self.needs_check = self.liveness.register()
        except OSError as e:
            log.warning("pkgcache: cannot record this process under %s (%s); checking the cache at start",
                        self.liveness.dir, e)
            self.liveness, self.needs_check = None, True

    def stop(self) -> None:
        self.tasks.cancel_all()

    def closed(self) -> None:
        """The store is closed and nothing is half written: the next start need not check the cache."""
        if self.liveness is not None:
            self.liveness.unregister()
            self.liveness = None

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
        store, used = self.storage.store, self.c.used
        if used:
            self.c.used = {}
            store.note_used(used)

    def note_stored(self, length: int) -> None:
        """A body was committed: past the size limit (the index's kept totals say), eviction starts now
        rather than at the next check."""
        s, store = self.storage.settings, self.storage.store
        if s.max_size and store.totals().bytes > s.max_size:
            self._over.set()

    async def _keep_size(self) -> None:
        """Evict when a commit takes the cache past pkgcache_max_size, and look again every SIZE_CHECK seconds
        (other processes sharing the root store files too); the index's kept totals tell, in one lookup."""
        while True:
            try:
                await asyncio.wait_for(self._over.wait(), SIZE_CHECK)
            except (asyncio.TimeoutError, TimeoutError):
                pass
            self._over.clear()
            store, s = self.storage.store, self.storage.settings
            if not s.max_size:
                continue
            size = store.totals()
            if size.complete and size.bytes <= s.max_size:  # one lookup, whatever the cache's size
                continue
            try:
                res = await self._evict(store, s.max_size)
            except offloop.OffLoopError as e:
                log.error("pkgcache: keeping the cache under pkgcache_max_size failed: %s", e)
                continue
            except Exception:
                log.exception("pkgcache: keeping the cache under pkgcache_max_size failed")
                continue
            if res["deleted"]:
                log.info("pkgcache: cache was %s, over pkgcache_max_size=%s: removed %d least recently used files "
                         "(%s)", human_size(res["size_before"]), human_size(s.max_size), res["deleted"],
                         human_size(res["freed"]))

    @staticmethod
    async def _evict(store: CacheStore, max_size: int) -> dict[str, int]:
        """Eviction reads every entry: in a child process, so hits keep their latency (a thread if there is
        no child to be had)."""
        try:
            step = await offloop.run("evict", store.root, str(max_size))
        except OSError as e:
            log.warning("pkgcache: evicting on a thread: %s", e)
            res = await asyncio.to_thread(enforce_max_size, store, max_size)
            return {"size_before": res.size_before, "freed": res.freed, "deleted": len(res.deleted)}
        return {k: int(step[k]) for k in ("size_before", "freed", "deleted")}

    async def _run(self) -> None:
        first = True
        while True:
            store = self.storage.store  # the current one: pkgcache_dir may change under mitmweb
            try:
                if first and self.needs_check:
                    self.tasks.start(self.check_cache(store), "cache check")
                if first and not store.totals().complete:
                    self.tasks.start(self.count_cache(store), "cache count")
                await self.sweep(store)
            except Exception:
                log.exception("pkgcache: housekeeping failed")
            await asyncio.sleep(SOON if first else INTERVAL)
            first = False

    async def check_cache(self, store: CacheStore) -> None:
        """Tree against index, and what cached indexes list, in a child process; one process of those sharing
        the cache does it (the lock), and the dead registrations it covers are settled once it is through."""
        dead = self.liveness.dead() if self.liveness is not None else []
        if dead:
            log.info("pkgcache: %d process(es) serving this cache ended without closing it: checking its tree "
                     "against its index in the background", len(dead))
        step = await self._in_child(store, CHECK_LOCK, "reconcile", "checking the cache tree against its index")
        if step is None:
            return
        counts = step.get("counts", {})
        if any(counts.values()):
            log.info("pkgcache: cache tree checked against its index: %s", counts)
        if self.liveness is not None:
            self.liveness.checked(dead)

    async def count_cache(self, store: CacheStore) -> None:
        """A cache an older version wrote: its size is counted once, in a child process, then kept."""
        log.info("pkgcache: counting the cache's files once in the background (the report says \"so far\")")
        step = await self._in_child(store, COUNT_LOCK, "count", "counting the cache's files")
        if step is not None:
            size = store.totals()
            log.info("pkgcache: cache counted: %d files, %s", size.files, human_size(size.bytes))

    @staticmethod
    async def _in_child(store: CacheStore, lock_name: str, job_name: str, what: str) -> dict[str, Any] | None:
        """Run an offloop job under a lock one process of those sharing the cache holds; its first step, or
        None when another process runs it or it failed (logged)."""
        lock = store.try_lock(lock_name)
        if lock is None:
            return None
        try:
            return await offloop.run(job_name, store.root)
        except (OSError, offloop.OffLoopError) as e:
            log.error("pkgcache: %s failed: %s", what, e)
            return None
        finally:
            lock.release()

    @staticmethod
    async def sweep(store: CacheStore) -> None:
        removed = await asyncio.to_thread(sweep_partials, store)
        if removed:
            log.info("pkgcache: removed %d leftovers of interrupted downloads", len(removed))
