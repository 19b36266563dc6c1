"""A suite switches atomically: a client that read one InRelease gets the very indexes it names.

A mirror updates its indexes and its Release one after the other, and the cache refreshes them one request
at a time; a client between its InRelease and its Packages would otherwise get a new Packages for an old
Release (apt's "Hash Sum mismatch") or the reverse.  So:

* each Release (or InRelease) answered to a client is recorded as that client's view of the suite
  (storage/suiteviews.py; what the Release names is read once per version);
* a plain-name index a client asks for is answered with the cached copy whose SHA-256 its Release names:
  at once, without asking upstream (those are the bytes it must get), or, when the cache has none, as usual;
* before a cached index is refreshed, its bytes are kept under their by-hash name (a hard link), so a
  client still on the older Release gets them after the plain name moved on;
* once a newer Release is committed, the kept copies neither it nor the one before names are dropped.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from pkgcache_suite.indexes.debian import parse_release
from pkgcache_suite.policy.suites import bases, by_hash, is_suite_index, release_base
from pkgcache_suite.storage import CacheStore, Entry, StoreError, keep_copy

if TYPE_CHECKING:
    from pkgcache_suite.proxy.storeaddon import OpenStore

log = logging.getLogger("pkgcache")
HASHED = "by-hash/SHA256"


class SuiteSwitch:
    def __init__(self, storage: OpenStore) -> None:
        self.storage = storage

    @staticmethod
    def is_release(key: str) -> bool:
        return release_base(key) is not None

    def _names(self, store: CacheStore, entry: Entry) -> dict[str, str] | None:
        names = store.suites.names(entry.sha256)
        if names is not None:
            return names
        try:
            with open(store.body_path(entry.key), "rb") as f:
                listed = parse_release(f)
        except (OSError, StoreError, ValueError) as e:
            log.warning("pkgcache: %s: not read as a Release (%s); its indexes are answered as usual", entry.url, e)
            return None
        names = {name: sha for name, _, sha in listed.files}
        store.suites.remember_names(entry.sha256, names)
        return names

    def given(self, client: str, key: str) -> None:
        """A Release was answered to client (a hit, a refreshed copy, a 304): that is its view of the suite."""
        base = release_base(key)
        store = self.storage.store
        entry = store.lookup(key) if base and client else None
        if base is None or entry is None or self._names(store, entry) is None:
            return
        store.suites.given(client, base, entry.sha256)

    def named(self, client: str, key: str) -> str | None:
        """The SHA-256 the Release client was given names for a plain-name index; None when its view of the
        suite is unknown (or names no such file)."""
        if not client or not is_suite_index(key):
            return None
        store = self.storage.store
        for base in bases(key):
            sha = store.suites.given_to(client, base)
            names = store.suites.names(sha) if sha else None
            if names is not None:
                return names.get(key[len(base):])
        return None

    def copy_with(self, key: str, sha256: str | None) -> Entry | None:
        """The cached copy of a plain-name index with these bytes: under its name, or kept by its digest."""
        store = self.storage.store
        for candidate in (key, by_hash(key, sha256)) if sha256 else ():
            entry = store.lookup(candidate)
            if entry is not None and entry.sha256 == sha256:
                return entry
        return None

    def keep(self, entry: Entry) -> None:
        """An index about to be refreshed: its bytes stay under their by-hash name for older views."""
        if is_suite_index(entry.key):
            store = self.storage.store
            keep_copy(store, entry, by_hash(entry.key, entry.sha256), by_hash(entry.url, entry.sha256), "immutable")

    def release_stored(self, entry: Entry) -> None:
        """A newer Release is in: the kept copies named by neither it nor the Release before it go."""
        base = release_base(entry.key)
        if base is None:
            return
        store = self.storage.store
        if self._names(store, entry) is None:
            return
        generations = store.suites.generations(entry.key, entry.sha256)
        keep: set[str] = set()
        folders: set[str] = set()
        for sha in generations:
            names = store.suites.names(sha) or {}
            keep.update(names.values())
            folders.update(os.path.dirname(n) for n in names)
        if len(generations) < 2:
            return  # the first Release seen: nothing was kept for an older one
        dropped = 0
        for folder in folders:
            hashed = f"{base}{folder}/{HASHED}" if folder else f"{base}{HASHED}"
            dropped += self._drop_unnamed(store, hashed, keep)
        if dropped:
            log.info("pkgcache: %s: %d index copies no kept Release names were dropped", entry.url, dropped)

    @staticmethod
    def _drop_unnamed(store: CacheStore, hashed: str, keep: set[str]) -> int:
        try:
            with os.scandir(store.body_path(f"{hashed}/x").parent) as it:
                names = [e.name for e in it if e.is_file(follow_symlinks=False)]
        except (OSError, StoreError):
            return 0
        gone = [n for n in names if len(n) == 64 and n.lower() not in keep and store.lookup(f"{hashed}/{n}")]
        for name in gone:
            store.drop(f"{hashed}/{name}")
        return len(gone)
