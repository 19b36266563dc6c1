"""Counters on disk: what every process serving one cache root did, by day, kept across restarts.

SQLite in the cache's private area (``.pkgcache/counters.sqlite``), because
several processes (workers, the front's log reader, the CLI) add to the same
totals at once and the report needs sums by day, repository and client
network: one ``INSERT ... ON CONFLICT DO UPDATE`` adds a batch atomically and
one ``GROUP BY`` reads it.  A key-value store would need a read-modify-write
per counter and a full scan per report.  Writers batch in memory and add
about once a second (see :class:`pkgcache_suite.stats.Stats`), so the cost per
request stays a dictionary update.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILENAME = "counters.sqlite"
RECENT_KEPT = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (
    day TEXT NOT NULL, dim TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (day, dim, name, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recent (
    ts REAL NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, client TEXT NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""

CountKey = tuple[str, str, str, str]  # day, dimension, name, field
Activity = tuple[float, str, str, str, int]  # when, event, url, client network, bytes


class CounterStore:
    """The counters file of one cache root; safe to open from any number of processes."""

    def __init__(self, private_dir: Path) -> None:
        self.path = private_dir / FILENAME
        self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('since', ?)", (str(time.time()),))

    def add(self, counts: dict[CountKey, int], recent: Iterable[Activity]) -> None:
        """Add a batch of deltas and activity lines in one transaction."""
        rows = [(*k, n) for k, n in counts.items() if n]
        recent = list(recent)
        with self._transaction():
            self.db.executemany("INSERT INTO counts VALUES (?, ?, ?, ?, ?) "
                                "ON CONFLICT (day, dim, name, field) DO UPDATE SET n = n + excluded.n", rows)
            if recent:
                self.db.executemany("INSERT INTO recent VALUES (?, ?, ?, ?, ?)", recent)
                self.db.execute("DELETE FROM recent WHERE rowid <= (SELECT max(rowid) FROM recent) - ?",
                                (RECENT_KEPT,))

    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """dimension -> name -> field -> count, summed over all days."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for dim, name, fld, n in self.db.execute(
                "SELECT dim, name, field, sum(n) FROM counts GROUP BY dim, name, field"):
            out.setdefault(dim, {}).setdefault(name, {})[fld] = n
        return out

    def daily(self, days: int) -> dict[str, dict[str, int]]:
        """day -> field -> count for the whole cache, the last ``days`` days that saw traffic."""
        out: dict[str, dict[str, int]] = {}
        for day, fld, n in self.db.execute(
                "SELECT day, field, n FROM counts WHERE dim = 'total' AND day IN "
                "(SELECT DISTINCT day FROM counts WHERE dim = 'total' ORDER BY day DESC LIMIT ?)", (days,)):
            out.setdefault(day, {})[fld] = n
        return dict(sorted(out.items()))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT ts, event, url, client, bytes FROM recent ORDER BY rowid DESC LIMIT ?",
                               (limit,))
        return [{"when": ts, "event": ev, "url": url, "client": client, "bytes": n} for ts, ev, url, client, n in rows]

    def since(self) -> float:
        row = self.db.execute("SELECT v FROM meta WHERE k = 'since'").fetchone()
        return float(row[0]) if row else time.time()

    def reset(self) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM counts")
            self.db.execute("DELETE FROM recent")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('since', ?)", (str(time.time()),))

    def close(self) -> None:
        self.db.close()

    def _transaction(self) -> Any:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers from several processes queue instead of failing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
