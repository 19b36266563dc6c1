"""Whether a folder pkgcache is told to use sits where a disk that is not there should be mounted.

A stick or an external disk that is not mounted leaves its mount point behind as an empty folder of
the root filesystem: writing a wanted list or a cache there would look like success, and the log would
tell the user the stick is safe to pull.  A place is refused when it, or a folder above it, is a mount
point named in the fstab that nothing is mounted on, or a folder where removable media are mounted
(``/media/NAME``, ``/media/USER/NAME``, ``/run/media/USER/NAME``, ``/mnt/NAME``) that is not a mount point.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

FSTAB = "/etc/fstab"
MEDIA_DEPTHS = {("media",): (1, 2), ("run", "media"): (2,), ("mnt",): (1,)}


def fstab_mount_points(text: str) -> set[str]:
    """The mount points an fstab names (its second field), swap and comments left out."""
    points = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].startswith("/") and fields[1] != "/":
            points.add(fields[1].replace("\\040", " ").rstrip("/"))
    return points


def _removable_roots(path: PurePosixPath) -> Iterable[PurePosixPath]:
    """The folders of path that would be a removable medium's mount point."""
    parts = path.parts[1:]
    for prefix, depths in MEDIA_DEPTHS.items():
        if tuple(parts[:len(prefix)]) == prefix:
            for depth in depths:
                if len(parts) >= len(prefix) + depth:
                    yield PurePosixPath("/", *parts[:len(prefix) + depth])


def unmounted_place(path: str, fstab: set[str], is_mount: Callable[[str], bool],
                    exists: Callable[[str], bool]) -> str | None:
    """Why path lies where something should be mounted and is not (None: nothing says so).  Pure: the
    fstab's mount points and the two checks on the file system are given."""
    p = PurePosixPath(os.path.normpath(path))
    folders = [p, *p.parents][:-1]  # never "/" itself
    for f in folders:
        if str(f) in fstab and not is_mount(str(f)):
            return f"{f} is a mount point in the fstab, and nothing is mounted on it"
    roots = [str(r) for r in _removable_roots(p)]
    if roots and not any(is_mount(r) for r in roots):
        shown = next((r for r in reversed(roots) if exists(r)), roots[-1])
        return f"nothing is mounted on {shown} (is the stick or disk plugged in and mounted?)"
    return None


def check_place(path: str) -> str | None:
    """unmounted_place on this machine."""
    try:
        with open(FSTAB, encoding="utf-8", errors="replace") as f:
            fstab = fstab_mount_points(f.read(1 << 20))
    except OSError:
        fstab = set()
    return unmounted_place(os.path.abspath(path), fstab, os.path.ismount, os.path.exists)
