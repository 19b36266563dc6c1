"""The wanted list: URLs an offline proxy could not serve, deduplicated, saved a moment after the last change,
and the packages offline clients stated they want (with their dpkg status).

Two copies are kept: one in the cache's private area, which survives the stick
being elsewhere, and one in the datastore when one is attached, which is what
travels to the connected machine.  Saving is debounced so a burst of misses
(``apt-get install`` of fifty packages) costs one write.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pkgcache_suite.atomicfile import DatastoreError, atomic_write_bytes, atomic_write_json, read_json
from pkgcache_suite.stick.datastore import Datastore
from pkgcache_suite.wanted.suiteuse import SuiteUse
from pkgcache_suite.wanted.wantspec import WantRequest

log = logging.getLogger("pkgcache")

KEEP_HEADERS = ("accept", "user-agent")
MAX_CLIENTS = 8


class WantedList:
    def __init__(self, local_path: Path, delay: float = 0.5, hints: dict[str, Any] | None = None) -> None:
        self.local_path = local_path
        self.delay = delay
        self.hints = hints or {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, dict[str, Any]] = {}  # id -> a stated request (WantRequest.to_json)
        self.use = SuiteUse()  # what clients asked of each Debian suite: written as the hint "indexes_used"
        self._blobs: dict[str, bytes] = {}  # dpkg status files not yet on disk, by digest
        self.datastore: Datastore | None = None
        self.on_datastore_error: Callable[[Exception], None] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._dirty = False
        self._dropped: set[str] = set()
        self._dropped_requests: set[str] = set()
        self._generation = 0  # changes recorded so far
        self._written = 0  # the generation the files on disk hold
        self._writing: asyncio.Future[bool] | None = None
        self._lock = threading.Lock()  # entries are read by the writing thread while the loop records
        try:
            doc = read_json(local_path, {"wanted": []})
            for w in doc.get("wanted", []):
                if isinstance(w, dict) and "url" in w:
                    self.entries[w["url"]] = w
            self._take_requests(doc)
            self._merge_use(doc)
        except DatastoreError as e:
            log.error("pkgcache: ignoring unreadable local wanted list: %s", e)

    def record(self, url: str, client: str, headers: dict[str, str], kind: str) -> bool:
        """Note one offline miss; returns True when the URL is new to the list."""
        now = time.time()
        with self._lock:
            w = self.entries.get(url)
            new = w is None
            if w is None:
                w = self.entries[url] = {"url": url, "first_seen": now, "count": 0, "clients": [], "headers": {},
                                         "kind": kind}
            w["last_seen"] = now
            w["count"] += 1
            if client and client not in w["clients"] and len(w["clients"]) < MAX_CLIENTS:
                w["clients"].append(client)
            for name in KEEP_HEADERS:
                if name in headers:
                    w["headers"][name] = headers[name]
        self._changed()
        return new

    def add_request(self, req: WantRequest, status: bytes | None) -> bool:
        """Note a statement of wanted packages; returns True when it is new.  Answer the client only after
        durable(): then the statement, and the status it names, are on the datastore."""
        with self._lock:
            new = req.id not in self.requests
            self.requests[req.id] = req.to_json()
            if status is not None and req.status_sha256:
                self._blobs[req.status_sha256] = status
        self._dropped_requests.discard(req.id)
        self._changed()
        return new

    def note_index(self, url: str, client: str) -> None:
        """A request under a suite's dists/: remember the suite, component and architecture it shows.  In
        memory only: on the request path of a connected proxy nothing is written; the next write of the list
        (an offline miss, a statement, stopping) carries it to the datastore."""
        with self._lock:
            self.use.note(url, client)

    def drop_requests(self, ids: list[str]) -> int:
        """Statements a fetch fulfilled: they leave the list (a status no request names stays, harmless)."""
        self._dropped_requests.update(ids)
        with self._lock:
            n = sum(1 for i in ids if self.requests.pop(i, None) is not None)
        if n:
            self._changed()
        return n

    def settle_requests(self, fulfilled: list[str], unresolved: dict[str, dict[str, str]]) -> None:
        """After an import: requests fetch resolved leave the list; the others keep apt's reasons, for the page."""
        changed = self.drop_requests(fulfilled) > 0
        with self._lock:
            for rid, problems in unresolved.items():
                r = self.requests.get(rid)
                if r is not None and r.get("unresolved") != problems:
                    r["unresolved"] = problems
                    changed = True
        if changed:
            self._changed()

    def _merge_use(self, doc: dict[str, Any]) -> None:
        hints = doc.get("hints")
        if isinstance(hints, dict):
            self.use.merge(hints.get("indexes_used"), hints.get("rpm_repos_used"))

    def _take_requests(self, doc: dict[str, Any]) -> None:
        with self._lock:
            for r in doc.get("requests", []) or []:
                if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"] not in self._dropped_requests:
                    self.requests.setdefault(r["id"], r)

    def drop(self, urls: list[str]) -> int:
        self._dropped.update(urls)  # another process's older copy of the list must not bring them back
        with self._lock:
            n = sum(1 for u in urls if self.entries.pop(u, None) is not None)
        if n:
            self._changed()
        return n

    def attach(self, datastore: Datastore | None) -> None:
        """Use a (new) datastore: merge what it already lists, then write the union soon."""
        self.datastore = datastore
        if datastore is not None:
            try:
                doc = datastore.read_wanted_doc()
            except DatastoreError as e:
                log.error("pkgcache: cannot read wanted list in %s: %s", datastore.root, e)
                doc = {}
            theirs = {w["url"]: w for w in doc.get("wanted", []) if isinstance(w, dict) and "url" in w}
            their_requests = {r.get("id") for r in doc.get("requests", []) or [] if isinstance(r, dict)}
            with self._lock:
                for url, w in theirs.items():
                    self.entries.setdefault(url, w)
            self._take_requests(doc)
            if (set(self.entries) != set(theirs) or set(self.requests) != their_requests
                    or not datastore.has_wanted_list()):
                self._changed()

    @property
    def safe_to_remove(self) -> bool:
        """The datastore holds everything recorded: the stick may be pulled out."""
        return self.datastore is not None and not self._dirty

    async def durable(self) -> None:
        """Return once everything recorded so far is on disk (the stick included): an offline miss is
        answered only then, so a stick pulled out as soon as the client exits carries the whole list.
        Misses arriving while a write runs share the next one (one fsync per burst, not per miss).
        If the write fails, the list stays in memory and locally, and the miss is answered anyway."""
        target = self._generation
        while self._written < target:
            if self._writing is None or self._writing.done():
                self._writing = asyncio.ensure_future(self._write_now(asyncio.get_running_loop()))
            if not await asyncio.shield(self._writing):
                return

    async def _write_now(self, loop: asyncio.AbstractEventLoop) -> bool:
        generation = self._generation
        ok = await asyncio.to_thread(self.save, False, loop)
        if ok:
            self._written = max(self._written, generation)
        return ok

    def _changed(self) -> None:
        self._generation += 1
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()  # no loop (commands, tests): write now
            return
        if self._save_handle is not None:
            self._save_handle.cancel()
        self._save_handle = loop.call_later(self.delay, self.save)

    def as_list(self) -> list[dict[str, Any]]:
        with self._lock:  # copies: record() changes entries while a writing thread dumps them
            return sorted(({**w, "clients": list(w.get("clients", [])), "headers": dict(w.get("headers", {}))}
                           for w in self.entries.values()), key=lambda w: w["first_seen"])

    def _merge_shared(self) -> None:
        """Workers of one tier share the list file: add what the others recorded before writing the union."""
        try:
            doc = read_json(self.local_path, {"wanted": []})
        except DatastoreError:
            return
        with self._lock:
            for w in doc.get("wanted", []):
                if isinstance(w, dict) and isinstance(w.get("url"), str) and w["url"] not in self._dropped:
                    self.entries.setdefault(w["url"], w)
            self._merge_use(doc)
        self._take_requests(doc)

    def save(self, announce: bool = True, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Write the list (merged with other processes' under a lock); True once it is on disk.  announce:
        say in the log that the datastore is complete (the delayed save after a burst of misses does).
        loop: called from a worker thread; a lost datastore is reported back on that loop."""
        if announce:
            self._save_handle = None
        if not self._dirty:
            if announce and self.datastore is not None and self._written == self._generation and self._generation:
                log.info("pkgcache: wanted list on %s is complete (%d URLs): safe to remove",
                         self.datastore.root, len(self.entries))
            return True
        lock = self.local_path.with_name(self.local_path.name + ".lock")
        try:
            with open(lock, "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX)  # one writer at a time among the processes sharing the cache
                self._merge_shared()
                return self._write(announce, loop)
        except OSError as e:
            log.error("pkgcache: cannot lock the local wanted list %s: %s", lock, e)
            return self._write(announce, loop)

    @property
    def status_dir(self) -> Path:
        return self.local_path.with_name("wanted-status")

    def _write_blobs(self, ds: Datastore | None) -> None:
        """Status files first, so a list on the datastore never names one that is not there."""
        with self._lock:
            pending = dict(self._blobs)
            named = {str(r["status"]) for r in self.requests.values() if isinstance(r.get("status"), str)}
        for sha, data in pending.items():
            self.status_dir.mkdir(exist_ok=True)
            atomic_write_bytes(self.status_dir / sha, data)
            with self._lock:
                self._blobs.pop(sha, None)
        if ds is None:
            return
        for sha in named:
            if ds.has_status(sha):
                continue
            try:
                data = (self.status_dir / sha).read_bytes()
            except OSError:
                continue  # recorded by another worker that has not written it yet; it will
            ds.put_status(sha, data)

    def _write(self, announce: bool = True, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        generation = self._generation
        items = self.as_list()
        with self._lock:
            requests = sorted((dict(r) for r in self.requests.values()), key=lambda r: r.get("when", 0))
            hints = {**self.hints, "indexes_used": self.use.as_json(), "rpm_repos_used": self.use.rpm_json()}
        try:
            self._write_blobs(None)
            atomic_write_json(self.local_path, {"version": 1, "hints": hints, "wanted": items,
                                                "requests": requests})
        except OSError as e:
            log.error("pkgcache: cannot write local wanted list %s: %s", self.local_path, e)
        ds = self.datastore
        if ds is not None:
            try:
                self._write_blobs(ds)
                ds.write_wanted(items, hints, requests)
                if announce:
                    log.info("pkgcache: wrote %d wanted URLs to %s: safe to remove", len(items), ds.wanted_path)
            except OSError as e:
                log.error("pkgcache: datastore %s went away while writing the wanted list (%s); "
                          "keeping the list locally until a datastore is back", ds.root, e)
                if self.on_datastore_error:
                    if loop is not None:
                        loop.call_soon_threadsafe(self.on_datastore_error, e)
                    else:
                        self.on_datastore_error(e)
                return False
        elif announce:
            log.info("pkgcache: %d wanted URLs kept locally (no datastore attached)", len(items))
        self._dirty = self._generation != generation  # recorded while writing: still to be written
        return True

    def flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
        self.save()
