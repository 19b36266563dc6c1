"""Bodies that come from elsewhere (a datastore, an import folder), verified as they are copied in."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from pkgcache_suite.errors import PkgcacheError
from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.private import StoreError, open_private, write_all
from pkgcache_suite.storage.store import CacheStore


def file_sha256(path: Path | str) -> tuple[int, str]:
    """(size, SHA-256) of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


class VerifyError(PkgcacheError, ValueError):
    """A body offered for import does not match the size or SHA-256 it was announced with."""


def place_file(store: CacheStore, key: str, url: str, kind: str, src: Path | int, size: int, sha256: str,
               meta: dict[str, Any]) -> Entry:
    """Copy a body from elsewhere (a datastore, an import folder) into the cache, verifying as it copies.

    src: a path, or an fd the caller opened (and closes) without following links on the way.
    The copy goes through the same partial-file-and-rename path as a download and
    holds the key's lock, so a proxy serving the same cache never sees half of it.
    """
    lock = store.try_lock(key)
    if lock is None:
        raise StoreError(errno.EBUSY, f"{key} is being downloaded right now")
    try:
        fd_in = src if isinstance(src, int) else os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd_in)
            if not stat.S_ISREG(st.st_mode):
                raise VerifyError(f"{key if isinstance(src, int) else src} is not a regular file")
            if st.st_size != size:
                raise VerifyError(f"size is {st.st_size}, manifest says {size}")
            part = store.partial_path(key)
            part.unlink(missing_ok=True)
            h = hashlib.sha256()
            fd_out = open_private(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                while chunk := os.read(fd_in, 1 << 20):
                    h.update(chunk)
                    write_all(fd_out, chunk)
            except BaseException:
                os.close(fd_out)
                part.unlink(missing_ok=True)
                raise
            os.close(fd_out)
        finally:
            if not isinstance(src, int):
                os.close(fd_in)
        if h.hexdigest() != sha256.lower():
            part.unlink(missing_ok=True)
            raise VerifyError(f"SHA-256 is {h.hexdigest()}, manifest says {sha256}")
        try:
            _move_into_place(store, key, part)
        except OSError:
            part.unlink(missing_ok=True)
            raise
        return _index(store, key, url, kind, size, sha256.lower(), meta)
    finally:
        lock.release()


def adopt_file(store: CacheStore, key: str, url: str, kind: str, src: Path, length: int | None,
               sha256: str | None, meta: dict[str, Any]) -> Entry:
    """Take a whole body another program stored on the cache's disk (the tier's nginx, fetching a miss) into
    the cache by a rename, once its size and SHA-256 are checked.

    The caller holds the key's lock (it led the download), so the file is read
    once, to hash it, and never copied.  VerifyError when it is not what it
    must be; the file is then left where it is, for the caller to remove.
    """
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise VerifyError(f"{src} is not a regular file")
        if length is not None and st.st_size != length:
            raise VerifyError(f"length mismatch: got {st.st_size} of {length} bytes")
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    digest = h.hexdigest()
    if sha256 and digest != sha256.lower():
        raise VerifyError(f"SHA-256 mismatch: body is {digest}, expected {sha256}")
    os.chmod(src, 0o644)  # as every cached body
    _move_into_place(store, key, src)
    return _index(store, key, url, kind, st.st_size, digest, meta)


def _move_into_place(store: CacheStore, key: str, body: Path) -> None:
    """Rename a checked body to its key's place (same file system: atomic, never half there)."""
    final = store.body_path(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    final = store.body_path(key)  # re-checked after creating folders
    os.replace(body, final)


def _index(store: CacheStore, key: str, url: str, kind: str, size: int, sha256: str, meta: dict[str, Any]) -> Entry:
    """The entry of a body just placed, with the response headers a hit repeats; `fetched` and `validated`
    when meta has them (a stick's copy is validated never: online, it is asked of the origin first)."""
    now = time.time()
    fields = {k: v for k, v in meta.items() if k in ("content_type", "last_modified", "etag") and v}
    entry = Entry(key=key, url=url, kind=kind, length=size, sha256=sha256, fetched=float(meta.get("fetched") or now),
                  validated=float(meta.get("validated", now)), **fields)
    store.put_entry(entry)
    return entry


def keep_copy(store: CacheStore, entry: Entry, key: str, url: str, kind: str) -> Entry | None:
    """The committed body of entry also under key (a hard link: the same bytes, no copy), so it outlives the
    next body committed under entry's own key.  None when it cannot be kept (the body changed or vanished
    meanwhile, another file system); whatever already holds key is left as it is."""
    held = store.lookup(key)
    if held is not None:
        return held
    tmp = store.partial_path(key).with_suffix(".link")
    try:
        fd = store.open_body(entry.key)  # the very file lookup() checked, never through a link
        try:
            held_st = os.fstat(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.link(store.body_path(entry.key), tmp, follow_symlinks=False)
        finally:
            os.close(fd)
        linked = os.lstat(tmp)
        if (linked.st_dev, linked.st_ino) != (held_st.st_dev, held_st.st_ino) or linked.st_size != entry.length:
            os.unlink(tmp)  # swapped in between: not the bytes that were checked
            return None
        _move_into_place(store, key, tmp)
    except (OSError, StoreError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None
    meta = {"content_type": entry.content_type, "last_modified": entry.last_modified, "etag": entry.etag,
            "fetched": entry.fetched, "validated": entry.validated}
    return _index(store, key, url, kind, entry.length, entry.sha256, meta)
