"""The wanted list: URLs an offline proxy could not serve, deduplicated, saved a moment after the last change.

Two copies are kept: one in the cache's private area, which survives the stick
being elsewhere, and one in the datastore when one is attached, which is what
travels to the connected machine.  Saving is debounced so a burst of misses
(``apt-get install`` of fifty packages) costs one write.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pkgcache_suite.offline.datastore import Datastore, DatastoreError, atomic_write_json, read_json

log = logging.getLogger("pkgcache")

KEEP_HEADERS = ("accept", "user-agent")
MAX_CLIENTS = 8


class WantedList:
    def __init__(self, local_path: Path, delay: float = 2.0, hints: dict[str, Any] | None = None) -> None:
        self.local_path = local_path
        self.delay = delay
        self.hints = hints or {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.datastore: Datastore | None = None
        self.on_datastore_error: Callable[[Exception], None] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._dirty = False
        self._dropped: set[str] = set()
        try:
            doc = read_json(local_path, {"wanted": []})
            for w in doc.get("wanted", []):
                if isinstance(w, dict) and "url" in w:
                    self.entries[w["url"]] = w
        except DatastoreError as e:
            log.error("pkgcache: ignoring unreadable local wanted list: %s", e)

    def record(self, url: str, client: str, headers: dict[str, str], kind: str) -> bool:
        """Note one offline miss; returns True when the URL is new to the list."""
        now = time.time()
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

    def drop(self, urls: list[str]) -> int:
        self._dropped.update(urls)  # another process's older copy of the list must not bring them back
        n = sum(1 for u in urls if self.entries.pop(u, None) is not None)
        if n:
            self._changed()
        return n

    def attach(self, datastore: Datastore | None) -> None:
        """Use a (new) datastore: merge what it already lists, then write the union soon."""
        self.datastore = datastore
        if datastore is not None:
            try:
                theirs = datastore.read_wanted()
            except DatastoreError as e:
                log.error("pkgcache: cannot read wanted list in %s: %s", datastore.root, e)
                theirs = {}
            for url, w in theirs.items():
                self.entries.setdefault(url, w)
            if set(self.entries) != set(theirs) or not datastore.wanted_path.exists():
                self._changed()

    def _changed(self) -> None:
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
        return sorted(self.entries.values(), key=lambda w: w["first_seen"])

    def _merge_shared(self) -> None:
        """Workers of one tier share the list file: add what the others recorded before writing the union."""
        try:
            doc = read_json(self.local_path, {"wanted": []})
        except DatastoreError:
            return
        for w in doc.get("wanted", []):
            if isinstance(w, dict) and isinstance(w.get("url"), str) and w["url"] not in self._dropped:
                self.entries.setdefault(w["url"], w)

    def save(self) -> None:
        self._save_handle = None
        if not self._dirty:
            return
        lock = self.local_path.with_name(self.local_path.name + ".lock")
        try:
            with open(lock, "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX)  # one writer at a time among the processes sharing the cache
                self._merge_shared()
                self._write()
        except OSError as e:
            log.error("pkgcache: cannot lock the local wanted list %s: %s", lock, e)
            self._write()

    def _write(self) -> None:
        items = self.as_list()
        try:
            atomic_write_json(self.local_path, {"version": 1, "hints": self.hints, "wanted": items})
        except OSError as e:
            log.error("pkgcache: cannot write local wanted list %s: %s", self.local_path, e)
        ds = self.datastore
        if ds is not None:
            try:
                ds.write_wanted(items, self.hints)
                log.info("pkgcache: wrote %d wanted URLs to %s", len(items), ds.wanted_path)
            except OSError as e:
                log.error("pkgcache: datastore %s went away while writing the wanted list (%s); "
                          "keeping the list locally until a datastore is back", ds.root, e)
                if self.on_datastore_error:
                    self.on_datastore_error(e)
                return
        else:
            log.info("pkgcache: %d wanted URLs kept locally (no datastore attached)", len(items))
        self._dirty = False

    def flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
        self.save()
