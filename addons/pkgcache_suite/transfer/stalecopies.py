"""After an index refresh: drop cached package files it now lists with other bytes, before anyone gets them.

A mirror may re-publish a file under the same name.  When a refreshed
package index (Packages/Sources, primary, APKINDEX, a cargo index file) is stored, the copies it lists with another
size or SHA-256 are dropped by a child process (maintenance/offloop.py: a
real suite's index is seconds of CPU, which on a thread would slow every
other client's hits); package hits of the same repository wait for that (at
most 30 s), so no client is served the old bytes under the new index; a
front (nginx) passes that origin's requests to the workers meanwhile.  What
the index lists is then recorded for the checks on commit, by the same
child, while hits go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pkgcache_suite.background import Tasks
from pkgcache_suite.maintenance import offloop
from pkgcache_suite.maintenance.listings import index_root, is_package_index, is_sidecar
from pkgcache_suite.maintenance.tasks import drop_unvouched, take_in_index
from pkgcache_suite.storage import CacheStore

log = logging.getLogger("pkgcache")

WAIT = 30.0


class StaleCopies:
    def __init__(self, store: Callable[[], CacheStore | None],
                 dropped: Callable[[str, list[str]], None] | None = None) -> None:
        """dropped(index key, keys): told of the copies a refreshed index disowned (for the counters)."""
        self._store = store
        self._dropped = dropped
        self._pending: list[str] = []
        self._roots: set[str] = set()
        self._held: set[str] = set()  # origins the front leaves to the workers while the check runs
        # files committed while an index's listing was being recorded: checked against it once it is
        self._windows: list[set[str]] = []
        self._task: asyncio.Task[None] | None = None
        self.tasks = Tasks()

    def index_stored(self, key: str) -> None:
        """Called for every committed body; acts on package indexes only."""
        store = self._store()
        if store is None:
            return

        def has(k: str) -> bool:
            return store.get_entry(k) is not None
        root = index_root(key, has)
        if root is None or not is_package_index(key, has):
            for window in self._windows:
                window.add(key)
            return
        self._pending.append(key)
        self._roots.add(root)
        if store is not None and root.split("/", 1)[0] not in self._held:
            origin = root.split("/", 1)[0]
            try:
                store.published.hold(origin)  # before the client has the index's last byte
                self._held.add(origin)
            except OSError as e:
                log.warning("pkgcache: the front could not be told to wait for the check of %s: %s", key, e)
        if self._task is None or self._task.done():
            self._task = self.tasks.start(self._run(), "stale-copy check")

    def busy_for(self, key: str) -> bool:
        """True while a check runs in this process that may drop key."""
        return (self._task is not None and not self._task.done()
                and any(key.startswith(r + "/") for r in self._roots))

    async def wait_for_check(self, store: CacheStore, key: str) -> bool:
        """Wait (at most WAIT) while a check that may drop key runs, in this process or in another one
        sharing the cache (a tier's workers); True when there was one to wait for."""
        if self.busy_for(key):
            try:
                await asyncio.wait_for(asyncio.shield(self._task), WAIT)  # type: ignore[arg-type]
            except (TimeoutError, asyncio.TimeoutError):
                pass
            return True
        origin = key.split("/", 1)[0]
        if not store.published.held(origin):
            return False
        loop = asyncio.get_running_loop()
        end = loop.time() + WAIT
        while store.published.held(origin) and loop.time() < end:
            await asyncio.sleep(0.05)
        return True

    async def _recorded(self, job: offloop.Job, key: str, window: set[str]) -> None:
        try:
            await job.finish()
        except offloop.OffLoopError as e:
            log.error("pkgcache: recording what an index lists failed: %s", e)
            return
        finally:
            job.kill()
            self._windows.remove(window)
        store = self._store()
        if window and store is not None:  # committed after the check, before the record: checked now
            self._told(key, await asyncio.to_thread(drop_unvouched, store, sorted(window)))
        log.info("pkgcache: %s: what it lists is recorded for the checks on commit", key)

    def _told(self, key: str, dropped: object) -> None:
        if self._dropped is not None and isinstance(dropped, list) and dropped:
            self._dropped(key, [str(k) for k in dropped])

    async def _on_thread(self, store: CacheStore, key: str) -> None:
        """No child process to be had: the same work on a thread, recording included before hits go on."""
        gone: list[str] = []
        try:
            await asyncio.to_thread(take_in_index, store, key, lambda _listed, dropped: gone.extend(dropped))
            self._told(key, gone)
            log.info("pkgcache: %s: what it lists is recorded for the checks on commit", key)
        except Exception:
            log.exception("pkgcache: checking %s for stale copies failed", key)

    async def _run(self) -> None:
        try:
            while self._pending:
                key = self._pending.pop(0)
                store = self._store()
                if store is None:
                    return
                if is_sidecar(key):  # one file to check: a thread does it sooner than a child starts
                    await self._on_thread(store, key)
                    continue
                try:
                    job = await offloop.start("index", store.root, key)
                except OSError as e:  # no child process to be had: a thread, slower for the others
                    log.warning("pkgcache: checking %s on a thread: %s", key, e)
                    await self._on_thread(store, key)
                    continue
                window: set[str] = set()
                self._windows.append(window)
                try:
                    step = await job.step()  # checked: the stale copies are gone, hits may go on
                    self._told(key, step.get("dropped"))
                except (offloop.OffLoopError, ValueError) as e:
                    log.error("pkgcache: checking %s for stale copies failed: %s", key, e)
                    job.kill()
                    self._windows.remove(window)
                    continue
                self.tasks.start(self._recorded(job, key, window), f"record what {key} lists")
        finally:
            self._roots.clear()
            self._pending.clear()
            store = self._store()
            for origin in self._held:
                if store is not None:
                    store.published.release(origin)
            self._held.clear()
