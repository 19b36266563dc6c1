"""Writing one download: a partial file, hashed as it is written, renamed into place only when whole."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pkgcache_suite.indexes.filecheck import check_file, compare, whole_file_alg
from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.private import open_private, write_private

if TYPE_CHECKING:
    from pkgcache_suite.storage.store import CacheStore


class Writer:
    """Writes one download to a partial file and renames it into place only when whole.

    Disk writes and SHA-256 run on a helper thread (both release the GIL), so the
    event loop that relays the body to the client only hands chunks over; at most
    QUEUE_LIMIT bytes wait, after which the loop waits for the disk (backpressure,
    bounded memory).
    """

    QUEUE_LIMIT = 16 << 20

    def __init__(self, store: CacheStore, key: str, url: str, kind: str) -> None:
        self.store, self.key, self.url, self.kind = store, key, url, kind
        self.part = store.partial_path(key)
        self.header_file = store.partial_header_path(key)
        self.fd = -1
        self.written = 0
        self.hash = hashlib.sha256()
        self.also: Any = None  # another whole-file digest, when what vouches for the file gives one (.sha1, npm's sha512)
        self.failed: str | None = None
        self.on_progress: Callable[[], None] | None = None  # called from the helper thread
        self.unwritten: list[bytes] = []  # chunks from the failed write on, for the followers' relay
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def begin(self, header: dict[str, Any]) -> None:
        """Create a fresh partial file (a new inode, so stale readers never see it) and publish headers."""
        try:
            self.header_file.unlink(missing_ok=True)  # a crashed leader's, if any
            self.part.unlink(missing_ok=True)
            self.fd = open_private(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # held while writing: followers tell live from dead by it
            header = {**header, "inode": os.fstat(self.fd).st_ino, "pid": os.getpid()}
            write_private(self.header_file, json.dumps(header).encode())
        except OSError as e:
            self.fail(f"cannot start cache file: {e}")
            return
        self._thread = threading.Thread(target=self._run, name=f"pkgcache-writer {self.key}", daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        """Queue chunk; after a failure it is still queued, and kept in .unwritten for the followers."""
        if self.fd < 0 or not chunk:
            return
        with self._cv:
            while self._pending > self.QUEUE_LIMIT and self.failed is None:
                self._cv.wait(1.0)
            self._pending += len(chunk)
        self._q.put(chunk)

    def _run(self) -> None:
        while True:
            chunk = self._q.get()
            if chunk is None:
                return
            if self.failed is None:
                try:
                    view = memoryview(chunk)
                    while view:
                        n = os.write(self.fd, view)
                        view = view[n:]
                    self.hash.update(chunk)
                    if self.also is not None:
                        self.also.update(chunk)
                    self.written += len(chunk)
                except OSError as e:
                    self.failed = f"write failed after {self.written} bytes: {e}"
                    self.unwritten.append(chunk)
            else:
                self.unwritten.append(chunk)
            with self._cv:
                self._pending -= len(chunk)
                self._cv.notify_all()
            if self.on_progress is not None and self._q.empty():
                self.on_progress()

    def flush(self) -> None:
        """Wait until every queued chunk is on disk (or the writer failed)."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None

    def hash_too(self, check: str) -> None:
        """Before the first chunk: keep the whole-file digest `check` names beside the SHA-256, so it is checked
        without reading the body again (a Maven .sha1, npm's integrity)."""
        if alg := whole_file_alg(check):
            self.also = hashlib.new(alg)

    def _check(self, check: str) -> str | None:
        """Why the body is not what `check` names: a digest kept while writing, or a look at the file (an Alpine
        package's control segment, its first few KiB)."""
        if (alg := whole_file_alg(check)) and self.also is not None and self.also.name == alg:
            return compare(alg, self.also.hexdigest(), check)
        return check_file(str(self.part), check)

    def fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
        self.abort()

    def abort(self) -> None:
        self.flush()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for p in (self.part, self.header_file):
            try:
                p.unlink()
            except OSError:
                pass

    def commit(self, expected_length: int | None, meta: dict[str, Any]) -> Entry | None:
        """Rename the body into place if it is whole; returns the new entry, or None (and why in .failed)."""
        self.flush()
        if self.fd < 0 or self.failed:
            self.failed = self.failed or "not writing"
            self.abort()
            return None
        if expected_length is not None and self.written != expected_length:
            self.fail(f"length mismatch: got {self.written} of {expected_length} bytes")
            return None
        digest = self.hash.hexdigest()
        want = meta.pop("expect_sha256", None)
        if want and want.lower() != digest:
            self.fail(f"SHA-256 mismatch: body is {digest}, expected {want}")
            return None
        if (check := meta.pop("expect_check", None)) and (why := self._check(check)):
            self.fail(why)
            return None
        try:
            final = self.store.body_path(self.key)
            final.parent.mkdir(parents=True, exist_ok=True)
            final = self.store.body_path(self.key)  # re-check after creating directories
            os.replace(self.part, final)  # still flocked: a follower never sees a finished writer before this
        except OSError as e:
            self.fail(f"cannot place body: {e}")
            return None
        os.close(self.fd)
        self.fd = -1
        now = time.time()
        entry = Entry(
            key=self.key, url=self.url, kind=self.kind, length=self.written,
            sha256=digest, fetched=now, validated=now, **meta,
        )
        try:
            self.store.put_entry(entry)
        except Exception as e:  # sqlite full, etc.: the body is there but unindexed = a miss
            self.failed = f"cannot index body: {e}"
            return None
        finally:
            try:
                self.header_file.unlink()
            except OSError:
                pass
        return entry
