"""The cache's size kept with its index: every change moves it, an older cache is counted once, exactly."""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from pkgcache_suite.storage import CacheStore, Entry
from pkgcache_suite.storage.totals import KEY, count_untagged


def _entry(key: str, length: int) -> Entry:
    return Entry(key=key, url=f"http://h/{key}", kind="immutable", length=length, sha256="0" * 64, fetched=1.0)


def _size(store: CacheStore) -> tuple[int, int, bool]:
    t = store.totals()
    return t.files, t.bytes, t.complete


# each step: (operation, key, length) and the (files, bytes) after it
STEPS = [
    (("put", "h/a.deb", 10), (1, 10)),
    (("put", "h/b.deb", 5), (2, 15)),
    (("put", "h/a.deb", 7), (2, 12)),      # replaced: counted once, at its new length
    (("touch", "h/a.deb", 0), (2, 12)),    # metadata only
    (("forget", "h/b.deb", 0), (1, 7)),
    (("forget", "h/b.deb", 0), (1, 7)),    # not there: nothing moves
    (("drop", "h/a.deb", 0), (0, 0)),
    (("put", "h/c.deb", 3), (1, 3)),
]


def test_every_change_moves_the_totals_by_what_it_changes(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    assert _size(store) == (0, 0, True) and len(store) == 0
    for (op, key, length), want in STEPS:
        if op == "put":
            store.put_entry(_entry(key, length))
        elif op == "touch":
            store.touch(key, validated=2.0)
        else:
            getattr(store, op)(key)
        assert _size(store)[:2] == want, (op, key)
        assert len(store) == want[0]
    assert store.keys() == ["h/c.deb"]  # the totals are no key of the cache
    store.close()
    again = CacheStore(tmp_path / "c")
    assert _size(again) == (1, 3, True)


def _older_cache(root: Path, n: int) -> CacheStore:
    """Entries as a version without totals wrote them: no tag, no totals record."""
    store = CacheStore(root)
    for i in range(n):
        store.index.set(f"h/p{i:05d}.deb", asdict(_entry(f"h/p{i:05d}.deb", i)))
    store.index.delete(KEY)
    store.close()
    return CacheStore(root)


def test_an_older_cache_is_counted_once_and_says_so_until_then(tmp_path: Path) -> None:
    store = _older_cache(tmp_path / "c", 1200)
    assert _size(store) == (0, 0, False)
    assert count_untagged(store.index, batch=100) == 1200
    assert _size(store) == (1200, sum(range(1200)), True)
    assert count_untagged(store.index) == 0 and _size(store) == (1200, sum(range(1200)), True)


def test_counting_is_exact_while_writers_replace_add_and_remove(tmp_path: Path) -> None:
    n = 3000
    store = _older_cache(tmp_path / "c", n)
    other = CacheStore(tmp_path / "c")  # a second writer on its own connection, as a worker process is
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            other.put_entry(_entry(f"h/p{(i * 7) % n:05d}.deb", 1000))  # replace an older entry
            other.put_entry(_entry(f"h/new{i:05d}.deb", 1))             # add one
            other.forget(f"h/p{(i * 13 + 1) % n:05d}.deb")               # remove one, counted or not
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        count_untagged(store.index, batch=50)
    finally:
        stop.set()
        t.join()
    files, nbytes, complete = _size(store)
    entries = list(store.entries())
    assert complete and files == len(entries) and nbytes == sum(e.length for _, e in entries)


def _count_in(root: str) -> None:
    store = CacheStore(root)
    count_untagged(store.index, batch=64)
    store.close()


@pytest.mark.parametrize("counters", [2])
def test_two_processes_counting_at_once_count_each_entry_once(tmp_path: Path, counters: int) -> None:
    _older_cache(tmp_path / "c", 2000).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_count_in, args=(str(tmp_path / "c"),)) for _ in range(counters)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 120
    for p in procs:
        p.join(max(deadline - time.monotonic(), 1))
        assert p.exitcode == 0
    assert _size(CacheStore(tmp_path / "c")) == (2000, sum(range(2000)), True)
