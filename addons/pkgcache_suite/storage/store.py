"""The one cache store shared by every addon and command: bodies on disk, metadata in diskcache.

Layout under the cache root::

    <host>[_port]/<path>          bodies, browsable like apt-cacher-ng's cache
    .pkgcache/index/               diskcache index: one Entry per key
    .pkgcache/partial/<id>.part    bodies being downloaded (renamed into place when complete)
    .pkgcache/partial/<id>.json    response headers of a download, for followers in other processes
    .pkgcache/locks/<id>.lock      flock()ed by whoever downloads <key>: the cross-process single flight
    .pkgcache/refs/                diskcache: key -> (size, SHA-256) that a cached index lists for it

Every private file is opened without following links (a link planted in the
private area is removed, never followed) and created exclusively.  A partial
body is flock()ed by its writer for as long as it is being written, so a
follower can tell a live download from a dead one by the very inode it reads.

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

import logging

import diskcache

log = logging.getLogger("pkgcache")

PRIVATE = ".pkgcache"


class StoreError(OSError):
    """The cache cannot do what was asked (unsafe path, disk trouble); callers degrade to proxying."""


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def open_private(path: Path, flags: int, mode: int = 0o644) -> int:
    """Open a file of the private area without following a link; a planted link is removed, then retried.

    With O_CREAT the file is created exclusively (after removing whatever was
    there), so nothing can be redirected to a file outside the cache.
    """
    for _ in range(3):
        try:
            if flags & os.O_CREAT and flags & os.O_EXCL:
                try:
                    if stat.S_ISLNK(os.lstat(path).st_mode):
                        os.unlink(path)
                except FileNotFoundError:
                    pass
            return os.open(path, flags | _NOFOLLOW, mode)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            log.warning("pkgcache: removed a symbolic link planted at %s", path)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    raise StoreError(errno.ELOOP, f"{path} keeps being replaced by a link")


def write_private(path: Path, data: bytes) -> None:
    """Replace path atomically with data: exclusive temporary file, no links followed, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_private(path: Path, limit: int = 1 << 20) -> bytes:
    """Read a small private file without following a link."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def fd_locked_by_other(fd: int) -> bool:
    """True when another open file (a live writer) holds a flock on fd's inode."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


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
                d = self.root / PRIVATE / sub
                d.mkdir(parents=True, exist_ok=True)
                if d.is_symlink() or (self.root / PRIVATE).is_symlink():
                    raise OSError(errno.ELOOP, f"{d} is a symbolic link")
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
        self._refs: diskcache.Cache | None = None

    def close(self) -> None:
        self.index.close()
        if self._refs is not None:
            self._refs.close()

    # -- what cached indexes say about files ---------------------------------------

    @property
    def refs(self) -> diskcache.Cache:
        if self._refs is None:
            self._refs = diskcache.Cache(str(self.root / PRIVATE / "refs"), eviction_policy="none",
                                         size_limit=2**62)
        return self._refs

    def record_refs(self, index_key: str, refs: list[tuple[str, int, str | None]]) -> None:
        """Remember the size and SHA-256 an index lists for each file, so a download can be checked on commit."""
        with self.refs.transact():
            for key, size, sha in refs:
                self.refs.set(key, (size, sha, index_key))

    def expected(self, key: str) -> tuple[int, str | None] | None:
        """(size, SHA-256 or None) that a cached index lists for key, if any."""
        v = self.refs.get(key)
        return (int(v[0]), v[1]) if v else None

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
        fd = open_private(self.lock_path(key), os.O_RDWR | os.O_CREAT)
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
            header = json.loads(read_private(self.partial_header_path(key)))
        except (OSError, ValueError):
            return None
        return header if isinstance(header, dict) and isinstance(header.get("headers"), list) else None

    def open_live_partial(self, key: str, header: dict[str, Any]) -> int | None:
        """A read-only fd on the partial body that header describes, if its writer is alive.

        A partial whose writer died (killed, crashed) is never followed: nobody
        holds its flock, or it is not the inode the header names.
        """
        try:
            fd = os.open(self.partial_path(key), os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if header.get("inode") != st.st_ino or not stat.S_ISREG(st.st_mode) or not fd_locked_by_other(fd):
                os.close(fd)
                return None
        except OSError:
            os.close(fd)
            return None
        return fd

    def sweep_partials(self, min_age: float = 2.0) -> list[str]:
        """Remove what dead downloads left in the private area: partial bodies nobody writes, their
        headers, temporary files and planted links.  Returns the names removed."""
        removed = []
        now = time.time()
        for sub in ("partial", "locks"):
            d = self.root / PRIVATE / sub
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for name in names:
                p = d / name
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                    if stat.S_ISLNK(st.st_mode):
                        p.unlink(missing_ok=True)
                        removed.append(f"{sub}/{name}")
                    continue
                if sub == "locks" or now - st.st_mtime < min_age:
                    continue  # lock files are reused, never removed: removing one could split a flight
                if name.endswith(".part") and not self._partial_alive(p):
                    p.unlink(missing_ok=True)
                    p.with_suffix(".json").unlink(missing_ok=True)
                    removed.append(f"{sub}/{name}")
                elif name.endswith(".json"):
                    part = p.with_suffix(".part")
                    if not part.exists() or not self._partial_alive(part):
                        p.unlink(missing_ok=True)
                        removed.append(f"{sub}/{name}")
                elif name.endswith(".tmp"):
                    p.unlink(missing_ok=True)
                    removed.append(f"{sub}/{name}")
        return removed

    @staticmethod
    def _partial_alive(path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return False
        try:
            return fd_locked_by_other(fd)
        finally:
            os.close(fd)

    def reconcile(self) -> dict[str, int]:
        """Make the tree and the index agree: an index entry without its body is forgotten; a body
        without an entry is kept only if a cached index vouches for its size and SHA-256 (then it is
        indexed), otherwise removed.  Nothing is ever served without having been checked."""
        counts = {"indexed": 0, "removed": 0, "forgotten": 0}
        for key in list(self.index.iterkeys()):
            if isinstance(key, str) and self.lookup(key) is None and not self.lock_busy(key):
                d = self.index.get(key)
                if d is not None:
                    try:
                        os.stat(self.body_path(key), follow_symlinks=False)
                        continue  # present but changed: verify's business, not ours
                    except (OSError, StoreError):
                        self.index.delete(key)
                        counts["forgotten"] += 1
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != PRIVATE]
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if self.index.get(key) is not None:
                    continue
                path = Path(dirpath) / name
                lock = self.try_lock(key)
                if lock is None:
                    continue  # being committed right now
                try:
                    if self.index.get(key) is not None:
                        continue
                    counts[self._adopt_or_remove(key, path)] += 1
                finally:
                    lock.release()
        return counts

    def _adopt_or_remove(self, key: str, path: Path) -> str:
        want = self.expected(key)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode) and want is not None and want[1]:
                size, digest = file_sha256(path)
                if size == want[0] and digest == want[1]:
                    now = time.time()
                    self.put_entry(Entry(key=key, url="", kind="immutable", length=size, sha256=digest,
                                         fetched=now, validated=now))
                    log.info("pkgcache: indexed %s: a cached index vouches for it", key)
                    return "indexed"
            path.unlink()
        except OSError:
            return "removed"
        log.warning("pkgcache: removed %s: it was in the cache tree without an index entry", key)
        return "removed"

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
            fd_out = open_private(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
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
