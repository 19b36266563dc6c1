"""How many files the index holds and how many bytes they are, kept as the index changes.

The dashboard, ``/stats.json`` and the size limit need the cache's size on
every look; summing a million entries takes a minute.  So the two numbers
live in the index's own database, changed in the same transaction as the
entry they count: a crash can never leave them apart, and every process
sharing the cache (tier workers, the CLI) keeps them together.

An entry whose length is in the totals carries the diskcache tag
``COUNTED``.  Entries an older version wrote have none: a cache opened the
first time by this version counts them once, in the background, a batch
per transaction (``count_untagged``), and until then the totals say they are
not complete.  The tag makes the count exact whatever writers do meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import diskcache

KEY = ("pkgcache", "totals")  # not a str: no cache key, and every walk over keys skips it
COUNTED = 1
BATCH = 500  # entries counted per transaction: how long a writer can wait on the count


@dataclass(frozen=True)
class Totals:
    files: int
    bytes: int
    complete: bool  # False while entries of an older version are still being counted


def ensure(index: diskcache.Cache) -> None:
    """Totals exist from the first open on: zero for an empty index, to be counted for an older one."""
    if KEY in index:
        return
    with index.transact(retry=True):
        if KEY not in index:
            index.set(KEY, {"files": 0, "bytes": 0, "complete": len(index) == 0})


def read(index: diskcache.Cache) -> Totals:
    t = index.get(KEY) or {"files": 0, "bytes": 0, "complete": False}
    return Totals(int(t["files"]), int(t["bytes"]), bool(t["complete"]))


def put(index: diskcache.Cache, key: str, value: dict[str, Any]) -> None:
    """Write an entry and move the totals by what it changes."""
    with index.transact(retry=True):
        old, tag = index.get(key, tag=True)
        index.set(key, value, tag=COUNTED)
        if old is not None and tag == COUNTED:
            _add(index, 0, int(value["length"]) - int(old["length"]))
        else:
            _add(index, 1, int(value["length"]))


def delete(index: diskcache.Cache, key: str) -> None:
    with index.transact(retry=True):
        old, tag = index.get(key, tag=True)
        if old is None:
            return
        index.delete(key)
        if tag == COUNTED:
            _add(index, -1, -int(old["length"]))


def count_untagged(index: diskcache.Cache, batch: int = BATCH) -> int:
    """Count the entries no totals include yet (an older version wrote them); returns how many.

    Each entry is checked and tagged inside the transaction that counts it, so one that a writer replaced
    or removed meanwhile is counted once or not at all."""
    done = 0
    keys: Iterator[Any] = (k for k in index.iterkeys() if isinstance(k, str))
    while chunk := list(islice(keys, batch)):
        with index.transact(retry=True):
            files = nbytes = 0
            for key in chunk:
                value, tag = index.get(key, tag=True)
                if value is not None and tag != COUNTED:
                    index.set(key, value, tag=COUNTED)
                    files, nbytes = files + 1, nbytes + int(value["length"])
            _add(index, files, nbytes)
            done += files
    with index.transact(retry=True):
        t = index.get(KEY) or {"files": 0, "bytes": 0}
        index.set(KEY, {**t, "complete": True})
    return done


def _add(index: diskcache.Cache, files: int, nbytes: int) -> None:
    """Inside the caller's transaction."""
    t = index.get(KEY) or {"files": 0, "bytes": 0, "complete": False}
    index.set(KEY, {**t, "files": t["files"] + files, "bytes": t["bytes"] + nbytes})
