"""The private area (``.pkgcache/``): files opened without following links, created exclusively, and locks.

A link planted in the private area is removed, never followed, so nothing can
be redirected to a file outside the cache.  A partial body is flock()ed by its
writer for as long as it is being written, so a follower can tell a live
download from a dead one by the very inode it reads.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import stat
import threading
from pathlib import Path

from pkgcache_suite.errors import PkgcacheError

log = logging.getLogger("pkgcache")

PRIVATE = ".pkgcache"


class StoreError(PkgcacheError, OSError):
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
        write_all(fd, data)
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


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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


def private_id(key: str) -> str:
    """The name of a key's files in the private area: its URL may be long or odd, this is not."""
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
