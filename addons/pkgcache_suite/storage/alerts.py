"""Signed indexes whose upstream copy does not verify: named on the dashboard until a good one is taken in.

Kept in the private area, so every process serving the cache (a tier's workers) raises and clears the same
alerts, and a restart does not hide one.
"""

from __future__ import annotations

import time
from pathlib import Path

import diskcache

MAX_SHOWN = 50


class SignatureAlerts:
    def __init__(self, private: Path) -> None:
        self._db = diskcache.Cache(str(private / "alerts"), eviction_policy="none", size_limit=2**62)

    def close(self) -> None:
        self._db.close()

    def raise_for(self, key: str, url: str, why: str) -> None:
        """upstream's copy of the index at key does not verify (the first time since is kept)."""
        since = self._db.get(key, (None, None, time.time()))[2]
        self._db.set(key, (url, why, since))

    def clear(self, key: str) -> None:
        """A copy of key that verifies was taken in."""
        self._db.delete(key)

    def all(self) -> dict[str, tuple[str, str, float]]:
        """key -> (URL, why, since when), at most MAX_SHOWN of them."""
        out: dict[str, tuple[str, str, float]] = {}
        for key in self._db:
            if len(out) >= MAX_SHOWN:
                break
            v = self._db.get(key)
            if v is not None:
                out[str(key)] = (str(v[0]), str(v[1]), float(v[2]))
        return out
