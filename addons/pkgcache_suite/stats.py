"""Counters of what the cache did: added up in memory per request, written to the cache root by flush() (the
proxy's housekeeping calls it every FLUSH_EVERY seconds; nothing is written on the request path).

Once attached to a cache root, the totals are those of every process sharing
that root (workers of one tier, the front's hits) and they survive restarts,
by day, so the report can show history.  Without a root (unit tests, a cache
that cannot be written) they stay in memory.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pkgcache_suite.storage.counters import Activity, CounterStore, CountKey

log = logging.getLogger("pkgcache")

# republished: a cached copy a refreshed index lists with other bytes, dropped; bad_signature: an upstream signed
# index that does not verify, refused
EVENTS = ("hit", "miss", "revalidated", "stale", "coalesced", "pass", "failed", "offline_miss", "known_404", "tunnel",
          "republished", "bad_signature")
FIELDS = (*EVENTS, "bytes_from_cache", "bytes_from_upstream")
DIMENSIONS = {"kind": "by_kind", "host": "by_host", "repo": "by_repo", "client": "by_client",
              "ecosystem": "by_ecosystem"}
FLUSH_EVERY = 1.0
HISTORY_DAYS = 30
RECENT_SHOWN = 30


def _blank() -> dict[str, int]:
    return dict.fromkeys(FIELDS, 0)


_day: tuple[int, str] = (0, "")


def today() -> str:
    """The local date, worked out once a minute (every request is counted under it)."""
    global _day
    minute = int(time.time() // 60)
    if _day[0] != minute:
        _day = (minute, time.strftime("%Y-%m-%d"))
    return _day[1]


class Stats:
    def __init__(self, private_dir: Path | None = None) -> None:
        self.started = time.time()
        self.store: CounterStore | None = None
        self._pending: dict[CountKey, int] = defaultdict(int)
        self._recent: list[Activity] = []
        self._lock = threading.Lock()
        self._mem: dict[CountKey, int] | None = None  # everything counted while no store is attached
        if private_dir is not None:
            self.attach(private_dir)

    def attach(self, private_dir: Path) -> None:
        """Keep the counters in ``private_dir`` from now on (what was counted before is added there)."""
        try:
            store = CounterStore(private_dir)
        except (OSError, sqlite3.Error) as e:
            log.error("pkgcache: counters stay in memory, %s cannot be used: %s", private_dir, e)
            return
        self.flush()
        if self.store is not None:
            self.store.close()
        self.store = store
        if self._mem is not None:
            self._pending.update(self._mem)
            self._mem = None
        self.flush()

    def count(self, event: str, kind: str, host: str, from_cache: int = 0, from_upstream: int = 0,
              repo: str = "", client: str = "", url: str = "", ecosystem: str = "") -> None:
        day = today()
        names = {"total": "all", "kind": kind, "host": host, "repo": repo, "client": client, "ecosystem": ecosystem}
        with self._lock:
            for dim, name in names.items():
                if not name:
                    continue
                self._pending[(day, dim, name, event)] += 1
                if from_cache:
                    self._pending[(day, dim, name, "bytes_from_cache")] += from_cache
                if from_upstream:
                    self._pending[(day, dim, name, "bytes_from_upstream")] += from_upstream
            if url:
                self._recent.append((time.time(), event, url, client, from_cache + from_upstream))
                if len(self._recent) > RECENT_SHOWN * 8:
                    del self._recent[:-RECENT_SHOWN * 4]

    def flush(self) -> None:
        """Write what was counted since the last flush (kept in memory, and retried, if that fails)."""
        with self._lock:
            if self.store is None:  # activity lines stay in self._recent
                if self._pending:
                    self._mem = self._mem or defaultdict(int)
                    for k, n in self._pending.items():
                        self._mem[k] += n
                    self._pending.clear()
                return
            if not self._pending and not self._recent:
                return
            pending, recent = dict(self._pending), list(self._recent)
            try:
                self.store.add(pending, recent)
            except sqlite3.Error as e:
                log.warning("pkgcache: counters not written yet: %s", e)
                return
            self._pending.clear()
            self._recent.clear()

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
            self._recent.clear()
            self._mem = None
            self.started = time.time()
            if self.store is not None:
                self.store.reset()

    def close(self) -> None:
        self.flush()
        if self.store is not None:
            self.store.close()
            self.store = None

    def snapshot(self) -> dict[str, Any]:
        """Totals, per dimension, daily history and recent activity of the whole cache root."""
        self.flush()
        if self.store is not None:
            with self._lock:  # one connection, used from the event loop and from worker threads
                totals, daily = self.store.totals(), self.store.daily(HISTORY_DAYS)
                recent, since = self.store.recent(RECENT_SHOWN), self.store.since()
        else:
            recent = [{"when": ts, "event": ev, "url": url, "client": client, "bytes": n}
                      for ts, ev, url, client, n in reversed(self._recent[-RECENT_SHOWN:])]
            totals, daily, since = _fold(self._mem or {}), _daily(self._mem or {}), self.started
        out: dict[str, Any] = {"started": self.started, "uptime": round(time.time() - self.started, 1),
                               "counting_since": since,
                               "total": _blank() | totals.get("total", {}).get("all", {})}
        for dim, key in DIMENSIONS.items():
            out[key] = {name: _blank() | fields for name, fields in totals.get(dim, {}).items()}
        out["daily"] = {day: _blank() | fields for day, fields in daily.items()}
        out["recent"] = recent
        return out


def _fold(counts: dict[CountKey, int]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (_, dim, name, fld), n in counts.items():
        bucket = out.setdefault(dim, {}).setdefault(name, {})
        bucket[fld] = bucket.get(fld, 0) + n
    return out


def _daily(counts: dict[CountKey, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (day, dim, _, fld), n in counts.items():
        if dim == "total":
            out.setdefault(day, {})[fld] = out.get(day, {}).get(fld, 0) + n
    return out
