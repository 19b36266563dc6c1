"""Files upstream stopped listing: a version deleted from a PyPI page, an npm document, a cargo index file, an
APKINDEX or a pacman database while the cache holds its file.

The file is kept and served (offline a client may still need it), and named on the dashboard, so a version
that disappeared is never held silently.  What each such index listed last is kept to tell what went.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import diskcache

MAX_LISTING = 200_000  # keys of one index remembered; past this (no such per-package index) none are


class Withdrawn:
    def __init__(self, private: Path) -> None:
        self._listings = diskcache.Cache(str(private / "listings"), eviction_policy="none", size_limit=2**62)
        self._gone = diskcache.Cache(str(private / "withdrawn"), eviction_policy="none", size_limit=2**62)

    def close(self) -> None:
        self._listings.close()
        self._gone.close()

    def take_in(self, index_key: str, listed: Iterable[str], cached: Any) -> list[str]:
        """An index's new listing: the cached files (cached(key) -> bool) it listed before and no longer
        does are marked withdrawn, the ones it lists again are not; returns the newly withdrawn."""
        now = set(listed)
        if len(now) > MAX_LISTING:
            return []
        before = set(self._listings.get(index_key, ()))
        gone = sorted(k for k in before - now if cached(k))
        with self._gone.transact():
            for key in gone:
                self._gone.set(key, (index_key, time.time()))
            for key in now & set(self._gone):
                self._gone.delete(key)
        self._listings.set(index_key, sorted(now))
        return gone

    def forget(self, key: str) -> None:
        """The file left the cache (expired, evicted): nothing to say about it any more."""
        self._gone.delete(key)

    def all(self, limit: int = 200) -> dict[str, tuple[str, float]]:
        """key -> (the index that stopped listing it, since when), at most limit of them."""
        out: dict[str, tuple[str, float]] = {}
        for key in self._gone:
            if len(out) >= limit:
                break
            v = self._gone.get(key)
            if v is not None:
                out[str(key)] = (str(v[0]), float(v[1]))
        return out
