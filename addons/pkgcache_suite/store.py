"""The one cache store shared by every addon and command: bodies on disk, metadata in diskcache.

Layout under the cache root::

    <host>[_port]/<path>          bodies, browsable like apt-cacher-ng's cache
    .pkgcache/index/               diskcache index: one Entry per key
    .pkgcache/partial/<id>.part    bodies being downloaded (renamed into place when complete)
    .pkgcache/partial/<id>.json    response headers of a download, for followers in other processes
    .pkgcache/locks/<id>.lock      flock()ed by whoever downloads <key>: the cross-process single flight

A body is visible only after it was written whole, length-checked and renamed,
and its index entry is written after the rename: a crash leaves at worst a file
without an entry, which is treated as a miss and overwritten.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import diskcache

PRIVATE = ".pkgcache"


class StoreError(OSError):
    """The cache cannot do what was asked (unsafe path, disk trouble); callers degrade to proxying."""


@dataclass
class Entry:
    key: str
    url: str
    kind: str
    length: int
    sha256: str
    fetched: float
    content_type: str = "application/octet-stream"
    last_modified: str | None = None
    etag: str | None = None
    validated: float = field(default=0.0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


class Lock:
    """An exclusive flock on one key; released by close() or by the kernel if the process dies."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1


class CacheStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for sub in ("partial", "locks"):
                (self.root / PRIVATE / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / PRIVATE / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise StoreError(e.errno, f"cache directory {self.root} is not usable: {e.strerror}") from None
        self.real_root = os.path.realpath(self.root)
        # key -> (entry, (st_dev, st_ino, st_size, st_mtime_ns)) of bodies already checked: a hit then
        # costs one stat instead of a realpath walk and an sqlite read.  Any change to the file
        # (another process replacing it, a planted symlink) changes the stat tuple and forces a full check.
        self._memo: dict[str, tuple[Entry, tuple[int, int, int, int]]] = {}
        self.index = diskcache.Cache(
            str(self.root / PRIVATE / "index"), eviction_policy="none", size_limit=2**62
        )

    def close(self) -> None:
        self.index.close()

    # -- paths -------------------------------------------------------------

    def body_path(self, key: str) -> Path:
        """Path of a body; refuses anything that would resolve outside the root (planted symlinks)."""
        if key.startswith(("/", ".")) or "\x00" in key or any(p in ("..", ".") for p in key.split("/")):
            raise StoreError(errno.EINVAL, f"unsafe cache key {key!r}")
        path = self.root / key
        parent = os.path.realpath(path.parent)
        if parent != self.real_root and not parent.startswith(self.real_root + os.sep):
            raise StoreError(errno.EPERM, f"cache path {path} escapes the cache root")
        return path

    def partial_path(self, key: str) -> Path:
        return self.root / PRIVATE / "partial" / f"{_id(key)}.part"

    def partial_header_path(self, key: str) -> Path:
        return self.root / PRIVATE / "partial" / f"{_id(key)}.json"

    def lock_path(self, key: str) -> Path:
        return self.root / PRIVATE / "locks" / f"{_id(key)}.lock"

    # -- metadata ------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """The entry for key if its body is present and whole."""
        memo = self._memo.get(key)
        if memo is not None:
            try:
                st = os.stat(self.root / key, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == memo[1]:
                return memo[0]
            del self._memo[key]
        d = self.index.get(key)
        if d is None:
            return None
        entry = Entry.from_dict(d)
        try:
            st = os.stat(self.body_path(key), follow_symlinks=False)
        except (OSError, StoreError):
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.length:
            return None
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo[key] = (entry, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return entry

    def put_entry(self, entry: Entry) -> None:
        self._memo.pop(entry.key, None)
        self.index.set(entry.key, asdict(entry))

    def touch(self, key: str, **changes: Any) -> None:
        self._memo.pop(key, None)
        d = self.index.get(key)
        if d is not None:
            d.update(changes)
            self.index.set(key, d)

    def drop(self, key: str) -> None:
        self._memo.pop(key, None)
        self.index.delete(key)
        try:
            os.unlink(self.body_path(key))
        except (FileNotFoundError, StoreError):
            pass

    def open_body(self, key: str) -> int:
        """A read-only fd on a committed body; O_NOFOLLOW so a planted symlink is never served.

        The fd must be the very file lookup() checked (same inode); otherwise the path was
        swapped in between and we refuse rather than serve something unchecked.
        """
        memo = self._memo.get(key)
        path = self.root / key if memo else self.body_path(key)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if memo:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != memo[1]:
                os.close(fd)
                self._memo.pop(key, None)
                raise StoreError(errno.ESTALE, f"{key} changed while being opened")
        return fd

    # -- single flight -----------------------------------------------------------

    def try_lock(self, key: str) -> Lock | None:
        fd = os.open(self.lock_path(key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return Lock(fd)

    def lock_busy(self, key: str) -> bool:
        lock = self.try_lock(key)
        if lock is None:
            return True
        lock.release()
        return False

    def read_partial_header(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.partial_header_path(key).read_bytes())
        except (OSError, ValueError):
            return None

    def writer(self, key: str, url: str, kind: str) -> Writer:
        return Writer(self, key, url, kind)


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
        self.failed: str | None = None
        self.on_progress: Callable[[], None] | None = None  # called from the helper thread
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def begin(self, header: dict[str, Any]) -> None:
        """Create a fresh partial file (a new inode, so stale readers never see it) and publish headers."""
        try:
            self.header_file.unlink(missing_ok=True)  # a crashed leader's, if any
            self.part.unlink(missing_ok=True)
            self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            tmp = self.header_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(header))
            os.replace(tmp, self.header_file)
        except OSError as e:
            self.fail(f"cannot start cache file: {e}")
            return
        self._thread = threading.Thread(target=self._run, name=f"pkgcache-writer {self.key}", daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        if self.fd < 0 or not chunk or self.failed:
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
                    self.written += len(chunk)
                except OSError as e:
                    self.failed = f"write failed after {self.written} bytes: {e}"
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
            self.fail(f"SHA-256 mismatch: body is {digest}, URL names {want}")
            return None
        try:
            os.close(self.fd)
            self.fd = -1
            final = self.store.body_path(self.key)
            final.parent.mkdir(parents=True, exist_ok=True)
            final = self.store.body_path(self.key)  # re-check after creating directories
            os.replace(self.part, final)
        except OSError as e:
            self.fail(f"cannot place body: {e}")
            return None
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


def file_sha256(path: Path | str) -> tuple[int, str]:
    """(size, SHA-256) of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


class VerifyError(ValueError):
    """A body offered for import does not match the size or SHA-256 it was announced with."""


def place_file(store: CacheStore, key: str, url: str, kind: str, src: Path, size: int, sha256: str,
               meta: dict[str, Any]) -> Entry:
    """Copy a body from elsewhere (a datastore, an import folder) into the cache, verifying as it copies.

    The copy goes through the same partial-file-and-rename path as a download and
    holds the key's lock, so a proxy serving the same cache never sees half of it.
    """
    lock = store.try_lock(key)
    if lock is None:
        raise StoreError(errno.EBUSY, f"{key} is being downloaded right now")
    try:
        fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd_in)
            if not stat.S_ISREG(st.st_mode):
                raise VerifyError(f"{src} is not a regular file")
            if st.st_size != size:
                raise VerifyError(f"size is {st.st_size}, manifest says {size}")
            part = store.partial_path(key)
            part.unlink(missing_ok=True)
            h = hashlib.sha256()
            fd_out = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                while chunk := os.read(fd_in, 1 << 20):
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd_out, view):]
            except BaseException:
                os.close(fd_out)
                part.unlink(missing_ok=True)
                raise
            os.close(fd_out)
        finally:
            os.close(fd_in)
        if h.hexdigest() != sha256.lower():
            part.unlink(missing_ok=True)
            raise VerifyError(f"SHA-256 is {h.hexdigest()}, manifest says {sha256}")
        try:
            final = store.body_path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            final = store.body_path(key)
            os.replace(part, final)
        except OSError:
            part.unlink(missing_ok=True)
            raise
        now = time.time()
        fields = {k: v for k, v in meta.items() if k in ("content_type", "last_modified", "etag") and v}
        entry = Entry(key=key, url=url, kind=kind, length=size, sha256=sha256.lower(),
                      fetched=float(meta.get("fetched") or now), validated=now, **fields)
        store.put_entry(entry)
        return entry
    finally:
        lock.release()
