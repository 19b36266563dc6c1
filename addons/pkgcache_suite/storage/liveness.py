"""Which processes serve a cache root, and whether one of them ended without closing it.

Checking the whole tree against the index (reconcile) and re-linking the
front's published tree (republish) cost time in proportion to the cache: a
site's cache holds hundreds of thousands of files, so neither may run on
every start.  They are needed only after a process died mid-write (a crash,
a kill, a power cut) or when the cache was never checked by this version.

Each serving process holds an flock()ed file under ``.pkgcache/running/`` for
as long as it runs and removes it when it stops cleanly.  A file nobody holds
is a process that died: the check after it settles that file.  A missing
folder is a cache this version has not seen: checked once.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from pkgcache_suite.storage.private import _NOFOLLOW, fd_locked_by_other

RUNNING = "running"
UNCHECKED = ".unchecked"  # a dot name: never a registration


class Liveness:
    def __init__(self, private_dir: Path) -> None:
        self.dir = private_dir / RUNNING
        self._fd: int | None = None
        self._mine: Path | None = None

    def dead(self) -> list[Path]:
        """Registrations of processes that ended without closing the cache (nobody holds their lock)."""
        out = []
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        for name in names:
            path = self.dir / name
            if path == self._mine or name.startswith("."):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
            except OSError:
                continue
            try:
                if not fd_locked_by_other(fd):  # nobody holds it: its process is gone
                    out.append(path)
            finally:
                os.close(fd)
        return out

    def needs_check(self) -> bool:
        """Whether the cache needs its check: a process died mid-run, or this version never checked it
        (the folder is new, or a first check has not run to its end)."""
        return not self.dir.is_dir() or (self.dir / UNCHECKED).exists() or bool(self.dead())

    def register(self) -> bool:
        """Record this process as serving the cache; returns needs_check() as it was at start."""
        unseen = not self.dir.is_dir()
        needs = self.needs_check()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._mine = fd, path
        if unseen:
            (self.dir / UNCHECKED).touch()  # a second process starting meanwhile must check too
        return needs

    def checked(self, dead: list[Path]) -> None:
        """The check ran to its end: the dead registrations it covered (and a first check) are settled."""
        for path in dead:
            path.unlink(missing_ok=True)
        (self.dir / UNCHECKED).unlink(missing_ok=True)

    def unregister(self) -> None:
        """A clean stop: nothing this process wrote is left half done."""
        if self._mine is not None:
            self._mine.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._mine = None
