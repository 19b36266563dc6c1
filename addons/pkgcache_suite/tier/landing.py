"""The landing folder, where the tier's nginx stores the misses it fetched for a worker, until that worker takes
them: what may be removed.

Each file is named by its token, whose first eight hex digits are the process
id of the worker that asked for it.  A worker takes its files within moments
of nginx logging them; a file whose worker is gone (it was killed, or
restarted) is never taken, and is removed a minute later.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

TOKEN = re.compile(r"([0-9a-f]{8})[0-9a-f]{24}")
GRACE = 60.0  # seconds a landed file is kept before it is judged an orphan


def owner(name: str) -> int | None:
    """The process id of the worker a landed file is for, or None when the name is not a token."""
    m = TOKEN.fullmatch(name)
    return int(m.group(1), 16) if m else None


def orphaned(name: str, age: float, alive: bool) -> bool:
    """Pure: a landed file nobody will take (its worker is gone, or it is not ours at all), once old enough."""
    return age > GRACE and (owner(name) is None or not alive)


def process_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_landing(landing: Path) -> int:
    """Remove the orphans; returns how many."""
    removed = 0
    now = time.time()
    try:
        names = [e for e in os.scandir(landing) if e.is_file(follow_symlinks=False)]
    except OSError:
        return 0
    for e in names:
        try:
            age = now - os.stat(e.path).st_ctime  # the rename into place; the mtime is upstream's date
        except OSError:
            continue
        if orphaned(e.name, age, process_alive(owner(e.name))):
            try:
                os.unlink(e.path)
                removed += 1
            except OSError:
                pass
    return removed
