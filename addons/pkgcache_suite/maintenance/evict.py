"""Enforcing pkgcache_max_size on a live cache: the proxy's housekeeping runs it every minute."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pkgcache_suite.maintenance.pins import is_pinned, read_pins
from pkgcache_suite.maintenance.retention import Candidate, plan_evict
from pkgcache_suite.storage import PRIVATE, CacheStore

log = logging.getLogger("pkgcache")


@dataclass
class EvictResult:
    deleted: list[str] = field(default_factory=list)
    freed: int = 0
    size_before: int = 0


def enforce_max_size(store: CacheStore, max_size: int) -> EvictResult:
    res = EvictResult()
    if max_size <= 0:
        return res
    size = store.totals()
    if size.complete and size.bytes <= max_size:  # the common case costs one lookup, whatever the cache's size
        res.size_before = size.bytes
        return res
    entries = list(store.entries())
    res.size_before = sum(e.length for _, e in entries)
    if res.size_before <= max_size:
        return res
    pins = read_pins(store.root / PRIVATE)
    files = [Candidate(key, e.length, store.last_used(key) or e.fetched, store.expected(key) is not None,
                       e.kind == "volatile", is_pinned(pins, key, e.url), store.lock_busy(key))
             for key, e in entries]
    lengths = {key: e.length for key, e in entries}
    for key in plan_evict(files, max_size):
        store.drop(key)
        res.deleted.append(key)
        res.freed += lengths[key]
    return res
