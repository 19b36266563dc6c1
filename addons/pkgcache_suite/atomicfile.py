"""Files written whole or not at all, and JSON read without following a link or past a bound.

For the cache's own small files and for a datastore's (a stick may be pulled
out at any moment, and may carry planted links).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pkgcache_suite.errors import PkgcacheError

MAX_JSON = 32 << 20  # a manifest of about 150,000 files; larger is refused, not read into memory


class DatastoreError(PkgcacheError, OSError):
    """The datastore is unusable (gone, unwritable, or of a format this version does not know)."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write a file so that it is either whole or absent, and on the medium when this returns.  The folder
    must exist: creating it could write to the mount point of a stick just pulled out."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)  # a leftover, or a planted link: never write through it
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def read_json(path: Path, default: Any, limit: int = MAX_JSON) -> Any:
    """Read a JSON file without following a link (a planted link reads as an error, never as its target),
    and not at all past limit bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise DatastoreError(f"cannot read {path}: {size} bytes, more than the {limit} this reads")
            return json.loads(f.read(limit + 1))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        raise DatastoreError(f"cannot read {path}: {e}") from None
