"""Keeping the cache honest after crashes: leftovers of dead downloads go, and the tree agrees with the index.

A body without an index entry is indexed only if a cached index vouches for
its size and SHA-256, and removed otherwise; nothing is ever served without
having been checked.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.placing import file_sha256
from pkgcache_suite.storage.private import _NOFOLLOW, PRIVATE, StoreError, fd_locked_by_other
from pkgcache_suite.storage.published import HOLD, publishable
from pkgcache_suite.storage.store import CacheStore

log = logging.getLogger("pkgcache")



def sweep_partials(store: CacheStore, min_age: float = 2.0) -> list[str]:
    """Remove what dead downloads left in the private area: partial bodies nobody writes, their
    headers, temporary files and planted links.  Returns the names removed."""
    removed = []
    now = time.time()
    for sub in ("partial", "locks"):
        d = store.root / PRIVATE / sub
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
            if name.endswith(".part") and not _partial_alive(p):
                p.unlink(missing_ok=True)
                p.with_suffix(".json").unlink(missing_ok=True)
                removed.append(f"{sub}/{name}")
            elif name.endswith(".json"):
                part = p.with_suffix(".part")
                if not part.exists() or not _partial_alive(part):
                    p.unlink(missing_ok=True)
                    removed.append(f"{sub}/{name}")
            elif name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                removed.append(f"{sub}/{name}")
    return removed


def _partial_alive(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return False
    try:
        return fd_locked_by_other(fd)
    finally:
        os.close(fd)


def reconcile(store: CacheStore) -> dict[str, int]:
    """Make the tree and the index agree: an index entry without its body is forgotten; a body
    without an entry is kept only if a cached index vouches for its size and SHA-256 (then it is
    indexed), otherwise removed.  Nothing is ever served without having been checked."""
    counts = {"indexed": 0, "removed": 0, "forgotten": 0}
    for key in list(store.keys()):
        if isinstance(key, str) and store.lookup(key) is None and not store.lock_busy(key):
            d = store.get_entry(key)
            if d is not None:
                try:
                    os.stat(store.body_path(key), follow_symlinks=False)
                    continue  # present but changed: verify's business, not ours
                except (OSError, StoreError):
                    store.forget(key)
                    counts["forgotten"] += 1
    for dirpath, dirnames, filenames in os.walk(store.root):
        rel_dir = os.path.relpath(dirpath, store.root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != PRIVATE]
        for name in filenames:
            key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            if store.get_entry(key) is not None:
                continue
            path = Path(dirpath) / name
            lock = store.try_lock(key)
            if lock is None:
                continue  # being committed right now
            try:
                if store.get_entry(key) is not None:
                    continue
                counts[_adopt_or_remove(store, key, path)] += 1
            finally:
                lock.release()
    return counts


def _adopt_or_remove(store: CacheStore, key: str, path: Path) -> str:
    want = store.expected(key)
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and want is not None and want[1]:
            size, digest = file_sha256(path)
            if want[0] in (None, size) and digest == want[1]:
                now = time.time()
                store.put_entry(Entry(key=key, url="", kind="immutable", length=size, sha256=digest,
                                     fetched=now, validated=now))
                log.info("pkgcache: indexed %s: a cached index vouches for it", key)
                return "indexed"
        store.published.unpublish(key)
        path.unlink()
    except OSError:
        return "removed"
    log.warning("pkgcache: removed %s: it was in the cache tree without an index entry", key)
    return "removed"


def republish(store: CacheStore) -> dict[str, int]:
    """Make the published tree match the index: a link for every publishable committed file, none for
    anything else (a cache used without a front, or changed while the front was down)."""
    pub = store.published
    pub.enable()
    counts = {"published": 0, "removed": 0}
    keep: set[str] = set()
    for key, entry in store.entries():
        if not publishable(key, entry.kind):
            continue
        body, link = store.body_path(key), pub.path(key)
        try:
            if not (link.exists() and os.path.samefile(body, link)):
                pub.publish(key, entry.kind, str(body))
                counts["published"] += 1
            keep.add(key)
        except (OSError, StoreError) as e:
            log.warning("pkgcache: %s not published for the front: %s", key, e)
    for dirpath, dirs, files in os.walk(pub.root):
        dirs[:] = [d for d in dirs if d != HOLD]  # a worker's marker while it checks an index, not a link
        for name in files:
            path = Path(dirpath) / name
            key = path.relative_to(pub.root).as_posix()
            if key not in keep and not _committed_since(store, key, path):
                path.unlink(missing_ok=True)
                counts["removed"] += 1
    return counts


def _committed_since(store: CacheStore, key: str, link: Path) -> bool:
    """A file committed (and linked by its writer) while republish ran, with the tier serving: keep its link."""
    entry = store.lookup(key)
    try:
        return entry is not None and publishable(key, entry.kind) and os.path.samefile(store.body_path(key), link)
    except (OSError, StoreError):
        return False
