"""Files of a datastore reached from its root one name at a time, never through a link.

A stick is handed over by someone else: any folder on it may be a symbolic link
to elsewhere on the machine (``/etc``, the cache itself), and so may the
datastore's own folder.  ``O_NOFOLLOW`` guards only the last name of a path, so
every name is opened relative to the folder before it (``openat``), with
``O_NOFOLLOW``, starting from the datastore's root, which must itself be a real
folder.  A link anywhere on the way is ``ELOOP`` (or ``ENOTDIR``): one entry
refused, never a file outside the stick read or written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import IO, Any

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})


def check_root(root: Path) -> None:
    """The datastore's folder is a real folder, not a link to one (OSError otherwise)."""
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, f"{root} is a symbolic link", str(root))
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, f"{root} is not a folder", str(root))


def _names(rel: str) -> list[str]:
    names = rel.split("/")
    if not rel or any(n in ("", ".", "..") for n in names):
        raise OSError(errno.EINVAL, f"not a plain relative path: {rel!r}")
    return names


def _walk(root: Path, names: list[str], make_dirs: bool) -> int:
    """An fd on the folder root/names..., each name opened inside the one before it, never through a link."""
    fd = os.open(root, _DIR)
    try:
        for name in names:
            try:
                nxt = os.open(name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not make_dirs:
                    raise
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_beneath(root: Path, rel: str, flags: int = os.O_RDONLY, mode: int = 0o644, make_dirs: bool = False) -> int:
    """An fd on root/rel, reached without following any link; with make_dirs, missing folders are made
    (each one inside the real folder before it)."""
    names = _names(rel)
    fd = _walk(root, names[:-1], make_dirs)
    try:
        return os.open(names[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    finally:
        os.close(fd)


def real_folder(root: Path, rel: str) -> Path:
    """root/rel as a path whose every folder was checked (and made) as a real folder from root down: for
    code that writes by path (a download's partial file beside its final name)."""
    names = _names(rel)
    os.close(_walk(root, names, make_dirs=True))
    return root.joinpath(*names)


def open_nofollow(path: Path, mode: str) -> IO[Any]:
    """open() for a file of a checked folder: never through a link planted at its own name."""
    flags = {"rb": os.O_RDONLY, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC}[mode]
    return os.fdopen(os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644), mode)


def fd_digest(fd: int) -> tuple[int, str]:
    """(size, SHA-256) of what fd reads from where it is."""
    h, size = hashlib.sha256(), 0
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()
