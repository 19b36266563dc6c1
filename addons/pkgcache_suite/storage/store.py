"""The one cache store shared by every addon and command: bodies on disk, metadata in diskcache.

Layout under the cache root::

    <host>[_port]/<path>          bodies, browsable like apt-cacher-ng's cache
    .pkgcache/index/               diskcache index: one Entry per key, and their totals (storage/totals.py)
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
import functools
import json
import logging
import os
import stat
import threading
import time
from email.utils import parsedate_to_datetime
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import diskcache

from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.private import (
    _NOFOLLOW, PRIVATE, Lock, StoreError, fd_locked_by_other, open_private, private_id, read_private,
)
from pkgcache_suite.storage import totals as index_totals
from pkgcache_suite.storage.totals import Totals
from pkgcache_suite.storage.published import Published
from pkgcache_suite.storage.alerts import SignatureAlerts
from pkgcache_suite.storage.suiteviews import SuiteViews
from pkgcache_suite.storage.withdrawn import Withdrawn
from pkgcache_suite.storage.writer import Writer

log = logging.getLogger("pkgcache")

MISSING_KEPT = 30 * 86400.0
REFS_REBUILT = ".rebuilt"  # no cache key starts with a dot: a marker among the refs


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
            # one per thread: two threads of one process (the tier supervisor) may open the store at once
            probe = self.root / PRIVATE / f".probe-{os.getpid()}-{threading.get_ident()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise StoreError(e.errno, f"cache directory {self.root} is not usable: {e.strerror}") from None
        self.real_root = os.path.realpath(self.root)
        # key -> (entry, (st_dev, st_ino, st_size, st_mtime_ns)) of bodies already checked: a hit then
        # costs one stat instead of a realpath walk and an sqlite read.  Any change to the file
        # (another process replacing it, a planted symlink) changes the stat tuple and forces a full check.
        # The memo is shared with worker threads (maintenance, stale-copy checks): changed under a lock.
        self._memo: dict[str, tuple[Entry, tuple[int, int, int, int]]] = {}
        self._memo_lock = threading.Lock()
        self.index = self._open_cache("index")
        index_totals.ensure(self.index)
        self._refs: diskcache.Cache | None = None
        self._missing: diskcache.Cache | None = None
        self._used: diskcache.Cache | None = None
        self.published = Published(self.root / PRIVATE)

    def close(self) -> None:
        self.index.close()
        opened = [self.__dict__.get(name) for name in ("withdrawn", "suites", "alerts")]
        for extra in (self._refs, self._missing, self._used, *opened):
            if extra is not None:
                extra.close()

    def _open_cache(self, name: str) -> diskcache.Cache:
        """A diskcache in the private area that never evicts: what it holds is the cache's own record."""
        return diskcache.Cache(str(self.root / PRIVATE / name), eviction_policy="none", size_limit=2**62)

    # -- what cached indexes say about files ---------------------------------------

    @property
    def refs(self) -> diskcache.Cache:
        if self._refs is None:
            self._refs = self._open_cache("refs")
        return self._refs

    # records of their own in the private area, opened when first used (close() closes what was opened)
    @functools.cached_property
    def withdrawn(self) -> Withdrawn:
        """Cached files their index no longer lists (storage/withdrawn.py)."""
        return Withdrawn(self.root / PRIVATE)

    @functools.cached_property
    def suites(self) -> SuiteViews:
        """Which Release each client was given, and what each names (storage/suiteviews.py)."""
        return SuiteViews(self.root / PRIVATE)

    @functools.cached_property
    def alerts(self) -> SignatureAlerts:
        """Signed indexes whose upstream copy does not verify (storage/alerts.py)."""
        return SignatureAlerts(self.root / PRIVATE)

    def record_refs(self, index_key: str, refs: Iterable[Sequence[Any]]) -> None:
        """Remember the size, SHA-256 and other digest an index lists for each file (key, size or None,
        SHA-256 or None[, other digest]), so a download can be checked on commit."""
        with self.refs.transact():
            for key, size, sha, *check in refs:
                self.refs.set(key, (size, sha, index_key, check[0] if check else None))

    def refs_rebuilt(self) -> bool:
        """Whether what every cached index lists was rebuilt once (a cache from before the record was kept)."""
        return REFS_REBUILT in self.refs

    def mark_refs_rebuilt(self) -> None:
        self.refs.set(REFS_REBUILT, True)

    @property
    def missing(self) -> diskcache.Cache:
        """key -> when upstream last answered 404 for it (kept 30 days)."""
        if self._missing is None:
            self._missing = self._open_cache("missing")
        return self._missing

    def remember_missing(self, key: str, when: float) -> None:
        self.missing.set(key, when, expire=MISSING_KEPT)

    def missing_since(self, key: str) -> float | None:
        """When upstream last said key does not exist, if it did within the last 30 days."""
        v = self.missing.get(key)
        return float(v) if v is not None else None

    def forget_missing(self, key: str) -> None:
        self.missing.delete(key)

    @property
    def used(self) -> diskcache.Cache:
        """key -> when a client last got it from the cache (written in batches), for least-recently-used eviction."""
        if self._used is None:
            self._used = self._open_cache("used")
        return self._used

    def note_used(self, batch: dict[str, float]) -> None:
        with self.used.transact():
            for key, when in batch.items():
                self.used.set(key, when)

    def last_used(self, key: str) -> float | None:
        v = self.used.get(key)
        return float(v) if v is not None else None

    def expected(self, key: str) -> tuple[int | None, str | None] | None:
        """(size or None, SHA-256 or None) that a cached index lists for key, if any."""
        v = self.refs.get(key)
        return (None if v[0] is None else int(v[0]), v[1]) if v else None

    def expected_check(self, key: str) -> str | None:
        """The digest other than SHA-256 a cached index lists for key (filecheck.check_file reads it)."""
        v = self.refs.get(key)
        return v[3] if v and len(v) > 3 else None

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
        return self.root / PRIVATE / "partial" / f"{private_id(key)}.part"

    def partial_header_path(self, key: str) -> Path:
        return self.root / PRIVATE / "partial" / f"{private_id(key)}.json"

    def lock_path(self, key: str) -> Path:
        return self.root / PRIVATE / "locks" / f"{private_id(key)}.lock"

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
            self._forget_memo(key)
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
        with self._memo_lock:
            if len(self._memo) > 50_000:
                self._memo.clear()
            self._memo[key] = (entry, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return entry

    def same_bytes_beside(self, key: str, sha256: str, limit: int = 64) -> Entry | None:
        """A committed file in the folder above key's by-hash/SHA256/ whose SHA-256 is sha256: a Debian index
        cached under its plain name is the very body its by-hash name asks for (its name is its digest).
        Only the folder's files are looked at, at most limit of them; links are never followed."""
        head, sep, _ = key.rpartition("/by-hash/SHA256/")
        if not sep:
            return None
        try:
            folder = self.body_path(head + "/x").parent
            with os.scandir(folder) as it:
                names = [e.name for e in it if e.is_file(follow_symlinks=False)][:limit]
        except (OSError, StoreError):
            return None
        for name in names:
            entry = self.lookup(f"{head}/{name}")
            if entry is not None and entry.sha256 == sha256.lower():
                return entry
        return None

    def _forget_memo(self, key: str) -> None:
        with self._memo_lock:
            self._memo.pop(key, None)

    def get_entry(self, key: str) -> Entry | None:
        """What the index says about key, whether or not its body is there (maintenance's view)."""
        d = self.index.get(key)
        return Entry.from_dict(d) if d is not None else None

    def keys(self) -> list[str]:
        """Every key in the index."""
        return list(self.iter_keys())

    def iter_keys(self) -> Iterator[str]:
        """The index's keys in sorted order, read a page at a time: the first few cost the same in a cache
        of a thousand files as in one of millions."""
        return (k for k in self.index.iterkeys() if isinstance(k, str))

    def entries(self) -> Iterator[tuple[str, Entry]]:
        """(key, entry) for every key in the index."""
        for key in self.keys():
            entry = self.get_entry(key)
            if entry is not None:
                yield key, entry

    def __len__(self) -> int:
        return max(len(self.index) - 1, 0)  # the totals are the one other record in the index

    def totals(self) -> Totals:
        """Files and bytes in the index, read in one lookup whatever the cache's size."""
        return index_totals.read(self.index)

    def put_entry(self, entry: Entry) -> None:
        self._forget_memo(entry.key)
        index_totals.put(self.index, entry.key, asdict(entry))
        try:
            if entry.last_modified and (when := parsedate_to_datetime(entry.last_modified)):
                # the body's mtime is upstream's Last-Modified: a front serving the file by itself then
                # answers If-Modified-Since exactly as pkgcache does
                os.utime(self.body_path(entry.key), (time.time(), when.timestamp()))
        except (OSError, ValueError, TypeError, StoreError):
            pass
        try:
            self.published.publish(entry.key, entry.kind, str(self.body_path(entry.key)))
        except OSError as e:  # the front then leaves it to the workers: slower, never wrong
            log.warning("pkgcache: %s not published for the front: %s", entry.key, e)

    def touch(self, key: str, **changes: Any) -> None:
        self._forget_memo(key)
        d = self.index.get(key)
        if d is not None:
            d.update(changes)
            index_totals.put(self.index, key, d)

    def forget(self, key: str) -> None:
        """Remove key from the index, leaving any body in place (it is then a miss); the front stops
        serving it first."""
        self.published.unpublish(key)
        self._forget_memo(key)
        index_totals.delete(self.index, key)

    def drop(self, key: str) -> None:
        self.forget(key)
        self.used.delete(key)
        try:
            os.unlink(self.body_path(key))
        except (FileNotFoundError, StoreError):
            pass

    def read_head(self, key: str, limit: int) -> bytes | None:
        """The first limit bytes of key's committed body, never through a link (None: not cached, unreadable)."""
        if self.lookup(key) is None:
            return None
        try:
            fd = self.open_body(key)
        except (OSError, StoreError):
            return None
        try:
            return os.pread(fd, limit, 0)
        except OSError:
            return None
        finally:
            os.close(fd)

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
                self._forget_memo(key)
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

    def writer(self, key: str, url: str, kind: str) -> Writer:
        return Writer(self, key, url, kind)
