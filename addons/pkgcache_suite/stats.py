"""Counters of what the cache did, kept in memory because they are touched on every request.

Per-process: two proxies sharing a cache root each report their own traffic.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

EVENTS = ("hit", "miss", "revalidated", "stale", "coalesced", "pass", "failed", "offline_miss", "known_404")


def _blank() -> dict[str, int]:
    return {**{e: 0 for e in EVENTS}, "bytes_from_cache": 0, "bytes_from_upstream": 0}


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.total = _blank()
        self.by_kind: dict[str, dict[str, int]] = defaultdict(_blank)
        self.by_host: dict[str, dict[str, int]] = defaultdict(_blank)
        self.by_repo: dict[str, dict[str, int]] = defaultdict(_blank)

    def count(self, event: str, kind: str, host: str, from_cache: int = 0, from_upstream: int = 0,
              repo: str = "") -> None:
        buckets = [self.total, self.by_kind[kind], self.by_host[host]]
        if repo:
            buckets.append(self.by_repo[repo])
        for bucket in buckets:
            bucket[event] += 1
            bucket["bytes_from_cache"] += from_cache
            bucket["bytes_from_upstream"] += from_upstream

    def snapshot(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "uptime": round(time.time() - self.started, 1),
            "total": dict(self.total),
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            "by_host": {k: dict(v) for k, v in self.by_host.items()},
            "by_repo": {k: dict(v) for k, v in self.by_repo.items()},
        }
