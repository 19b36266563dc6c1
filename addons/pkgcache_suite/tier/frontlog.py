"""Hits the front served, read from nginx's log and added to the tier's shared counters.

nginx writes one line per request it answered from the published tree
(``$msec $status $bytes $client URL``).  The supervisor reads the new lines
about once a second and counts each as a hit, so the dashboard, stats.json and
/metrics of any worker show the whole tier.  When the file grows large it is
renamed, nginx is told to reopen its log, and the old one is read to its end
first: nothing is lost or counted twice.  Each hit also marks its file as used,
so the size limit's least-recently-used order counts the front's hits as it
counts the workers'.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pkgcache_suite.policy.access import network_of
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for_url
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.stats import Stats

log = logging.getLogger("pkgcache")

ROTATE_AT = 16 << 20
SETTLE = 2.0  # seconds nginx may still write to a renamed log after being told to reopen


def rotate_if_large(path: Path, reopen: Callable[[], None], limit: int = ROTATE_AT) -> bool:
    """Rename a log nginx writes once it is large (its readers follow the rename) and have nginx reopen it."""
    try:
        if path.stat().st_size <= limit:
            return False
        os.replace(path, path.with_suffix(".old"))
    except OSError:
        return False
    reopen()
    return True


class FrontLog:
    def __init__(self, path: Path, stats: Stats, reopen: Callable[[], None],
                 note_used: Callable[[dict[str, float]], None] | None = None) -> None:
        self.path, self.stats, self.reopen, self.note_used = path, stats, reopen, note_used
        self.classifier = Classifier()  # the shipped rules tell whose file the front served
        self.used: dict[str, float] = {}  # key -> when the front last served it, written once per read
        self.offset = 0
        self._old: tuple[Path, int, float] | None = None  # a rotated log still being finished
        self.counted = 0

    def read(self) -> int:
        """Count what was logged since the last call; returns how many hits."""
        n = 0
        if self._old is not None:
            old, offset, since = self._old
            got, offset = self._consume(old, offset)
            n += got
            self._old = (old, offset, since)
            if time.monotonic() - since > SETTLE:
                old.unlink(missing_ok=True)
                self._old = None
        got, self.offset = self._consume(self.path, self.offset)
        n += got
        if self.offset > ROTATE_AT and self._old is None:
            rotated = self.path.with_suffix(".old")
            os.replace(self.path, rotated)
            self._old = (rotated, self.offset, time.monotonic())
            self.offset = 0
            self.reopen()
        if n:
            self.stats.flush()
        if self.used and self.note_used is not None:
            try:
                self.note_used(self.used)
            except Exception as e:  # the counters are kept; the order of eviction is a little older
                log.warning("pkgcache: could not note the front's hits for the size limit: %s", e)
        self.used = {}
        self.counted += n
        return n

    def _consume(self, path: Path, offset: int) -> tuple[int, int]:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return 0, offset
        end = data.rfind(b"\n") + 1  # a line nginx is still writing waits for the next call
        n = 0
        for line in data[:end].decode("utf-8", "replace").splitlines():
            n += self._count(line)
        return n, offset + end

    def _count(self, line: str) -> int:
        parts = line.split(" ")
        if len(parts) != 5 or not parts[1].isdigit() or not parts[2].isdigit():
            return 0
        _, status, sent, client, url = parts
        if status not in ("200", "206", "304"):
            return 0  # a 416 or 412 is answered, but nothing was served
        try:
            key = key_for_url(url)
        except (UnsafeURL, ValueError):
            return 0
        host = urlsplit(url).hostname or ""
        self.used[key] = time.time()
        self.stats.count("hit", "immutable", host, from_cache=int(sent), repo=key.split("/", 1)[0],
                         client=network_of(client), url=url,
                         ecosystem=self.classifier.explain(url, urlsplit(url).path)[1])
        return 1
