"""Keeping the cache under its size limit: which files go, decided purely from what each one is.

Order of eviction: files no cached index lists (old versions, one-off
downloads) before files an index still lists, each group least recently used
first; indexes last, as they are small and every client needs them.  Pinned
files and files being downloaded never go.  The cache is brought to 90% of the
limit, so one new file does not trigger another round at once.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_FRACTION = 0.9


@dataclass(frozen=True)
class Candidate:
    key: str
    length: int
    last_used: float  # when a client last got it, or when it was stored
    listed: bool  # a cached index lists it
    volatile: bool  # an index or other metadata
    pinned: bool = False
    busy: bool = False


def plan_evict(files: list[Candidate], max_size: int) -> list[str]:
    """Keys to delete so the cache fits in max_size (0: no limit)."""
    total = sum(f.length for f in files)
    if max_size <= 0 or total <= max_size:
        return []
    target = int(max_size * TARGET_FRACTION)
    order = sorted((f for f in files if not f.pinned and not f.busy),
                   key=lambda f: (f.volatile, f.listed, f.last_used))
    out = []
    for f in order:
        if total <= target:
            break
        out.append(f.key)
        total -= f.length
    return out
