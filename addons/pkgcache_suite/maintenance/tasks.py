"""Cache maintenance driven by the repository indexes: expire, verify, import, releases, stale-copy removal.

Every function works on a live cache (a proxy may be serving it): files whose
key is locked are being downloaded and are skipped, deletions go through the
store so its index and memo stay right, and nothing is deleted under a
repository whose indexes could not be parsed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgcache_suite.atomicfile import atomic_write_json, read_json
from pkgcache_suite.indexes.filecheck import check_file
from pkgcache_suite.maintenance.listings import (Listed, index_refs, index_root, is_package_index, tracks_withdrawals,
                                               vouches_for)
from pkgcache_suite.maintenance.model import RootModel, all_entries, build_model
from pkgcache_suite.maintenance.pins import is_pinned, read_pins
from pkgcache_suite.maintenance.plan import plan_expire
from pkgcache_suite.progress import CountProgress as Progress
from pkgcache_suite.storage import PRIVATE, CacheStore, StoreError, VerifyError, file_sha256, place_file
from pkgcache_suite.storage.entry import Entry

log = logging.getLogger("pkgcache")

DEFAULT_GRACE_DAYS = 4.0


def _private(store: CacheStore, name: str) -> Path:
    return store.root / PRIVATE / name


def record_run(store: CacheStore, command: str, result: dict[str, Any]) -> None:
    path = _private(store, "maintenance.json")
    runs = read_json(path, {"runs": []}).get("runs", [])
    runs.append({"command": command, "when": time.time(), **result})
    atomic_write_json(path, {"runs": runs[-50:]})


# -- expire -----------------------------------------------------------------------


@dataclass
class ExpireResult:
    deleted: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)
    orphaned: dict[str, float] = field(default_factory=dict)  # key -> since
    refused_roots: dict[str, list[str]] = field(default_factory=dict)
    limited: list[str] = field(default_factory=list)
    freed: int = 0

    def summary(self) -> dict[str, Any]:
        return {"deleted": len(self.deleted), "would_delete": len(self.would_delete), "freed": self.freed,
                "orphans": len(self.orphaned), "refused": self.refused_roots, "limited": self.limited}


def expire(store: CacheStore, grace_days: float = DEFAULT_GRACE_DAYS, now_: bool = False, dry_run: bool = False,
           progress: Progress | None = None) -> ExpireResult:
    """Orphans (cached files no cached index references) are deleted after a grace period, unless
    referenced again; roots whose indexes failed to parse are left alone."""
    entries = dict(all_entries(store))
    model = build_model(store, entries)
    orphans_path = _private(store, "orphans.json")
    now = time.time()
    pins = read_pins(store.root / PRIVATE)
    plan = plan_expire(entries, model, read_json(orphans_path, {}).get("orphans", {}), now, grace_days, now_,
                       pinned=lambda key: is_pinned(pins, key, entries[key].url))
    res = ExpireResult(limited=list(model.limited), refused_roots=plan.refused_roots)
    keep_orphans = dict(plan.orphans)
    if progress:
        progress.advance(len(entries) - len(plan.due))
    for key in plan.due:
        if progress:
            progress.advance()
        if dry_run:
            res.would_delete.append(key)
        elif not store.lock_busy(key):  # one being (re)downloaded right now waits for the next run
            store.drop(key)
            _prune_dirs(store, key)
            res.deleted.append(key)
            res.freed += entries[key].length
            keep_orphans.pop(key, None)
    if progress:
        progress.close()
    res.orphaned = keep_orphans
    if not dry_run:
        atomic_write_json(orphans_path, {"orphans": keep_orphans, "when": now})
        record_run(store, "expire", res.summary())
    return res


def _prune_dirs(store: CacheStore, key: str) -> None:
    parent = (store.root / key).parent
    root = store.root.resolve()
    while parent.resolve() != root:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


# -- verify ------------------------------------------------------------------------


@dataclass
class VerifyResult:
    checked: int = 0
    damaged: dict[str, str] = field(default_factory=dict)
    skipped_busy: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    refused_roots: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"checked": self.checked, "damaged": len(self.damaged), "fixed": len(self.fixed),
                "skipped_busy": len(self.skipped_busy), "index_errors": self.refused_roots}


def verify(store: CacheStore, fix: str | None = None, progress_factory: Callable[[int], Progress] | None = None
           ) -> VerifyResult:
    """Check every cached file's size and SHA-256 against the index that lists it (or, for files no index
    lists, against the digest recorded when it was stored)."""
    res = VerifyResult()
    entries = dict(all_entries(store))
    model = build_model(store, entries)
    for root in model.roots.values():
        if root.errors:
            res.refused_roots[root.root] = root.errors
    progress = progress_factory(len(entries)) if progress_factory else None
    for key, entry in entries.items():
        if progress:
            progress.advance()
        if store.lock_busy(key):
            res.skipped_busy.append(key)
            continue
        ref = model.ref(key)
        want_size, want_sha, source = entry.length, entry.sha256, "the digest recorded when it was stored"
        if ref is not None and ref.sha256:
            want_size, want_sha, source = ref.size, ref.sha256, ref.index
        try:
            size, sha = file_sha256(store.body_path(key))
        except (OSError, StoreError) as e:
            res.damaged[key] = f"unreadable: {e}"
            continue
        res.checked += 1
        if size != want_size or sha != want_sha:
            res.damaged[key] = f"size {size} sha256 {sha}; expected {want_size} {want_sha} from {source}"
    if progress:
        progress.close()
    if fix:
        for key in res.damaged:
            if fix == "delete":
                store.drop(key)
            elif fix == "truncate":
                try:
                    os.truncate(store.body_path(key), 0)
                except (OSError, StoreError):
                    pass
                store.forget(key)
            res.fixed.append(key)
    atomic_write_json(_private(store, "damaged.json"),
                      {"when": time.time(), "damaged": {k: v for k, v in res.damaged.items() if k not in res.fixed}})
    record_run(store, "verify", res.summary())
    return res


# -- import ----------------------------------------------------------------------


@dataclass
class ImportResult:
    placed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def import_dir(store: CacheStore, directory: Path, progress_factory: Callable[[int], Progress] | None = None
               ) -> ImportResult:
    """Place package files from elsewhere where a client request would find them, matched by SHA-256."""
    res = ImportResult()
    model = build_model(store)
    by_sha: dict[str, list[tuple[str, RootModel]]] = {}
    sizes: set[int] = set()
    for root in model.roots.values():
        for key, ref in root.refs.items():
            if ref.sha256:
                by_sha.setdefault(ref.sha256, []).append((key, root))
                sizes.add(ref.size)
    files = [p for p in sorted(directory.rglob("*")) if p.is_file() and not p.is_symlink()]
    progress = progress_factory(len(files)) if progress_factory else None
    for path in files:
        if progress:
            progress.advance()
        try:
            size = path.stat().st_size
            if size not in sizes:
                res.unmatched.append(str(path))
                continue
            _, sha = file_sha256(path)
        except OSError as e:
            res.failed[str(path)] = str(e)
            continue
        targets = by_sha.get(sha)
        if not targets:
            res.unmatched.append(str(path))
            continue
        for key, root in targets:
            current = store.lookup(key)
            if current is not None and current.sha256 == sha:
                res.already.append(key)
                continue
            url = root.url_for(key) or key
            try:
                place_file(store, key, url, "immutable", path, size, sha, {"content_type": _ctype(key)})
                res.placed.append(key)
            except (OSError, VerifyError) as e:
                res.failed[str(path)] = str(e)
    if progress:
        progress.close()
    record_run(store, "import", {"placed": len(res.placed), "already": len(res.already),
                                 "unmatched": len(res.unmatched), "failed": len(res.failed)})
    return res


def _ctype(key: str) -> str:
    if key.endswith(".deb"):
        return "application/vnd.debian.binary-package"
    if key.endswith(".rpm"):
        return "application/x-rpm"
    return "application/octet-stream"


# -- releases ------------------------------------------------------------------------


def releases(store: CacheStore) -> list[dict[str, Any]]:
    entries = dict(all_entries(store))
    model = build_model(store, entries)
    out = []
    for root in model.roots.values():
        if root.family != "debian":
            continue
        for suite in sorted(root.suites):
            prefix = f"{root.root}/dists/{suite}/"
            index_keys = [k for k in entries if k.startswith(prefix)]
            pkgs = [k for k in root.package_refs_by_suite.get(suite, set()) if k in entries]
            out.append({"root": root.root, "suite": suite, "name": f"{root.root}:{suite}",
                        "index_files": len(index_keys), "index_bytes": sum(entries[k].length for k in index_keys),
                        "packages": len(pkgs), "package_bytes": sum(entries[k].length for k in pkgs),
                        "errors": root.errors})
    return out


def remove_release(store: CacheStore, name: str) -> list[str]:
    """Remove a suite's index tree (name: SUITE, or ROOT:SUITE); its packages become orphans for expire."""
    root_filter, _, suite = name.rpartition(":")
    removed = []
    keys = [k for k, _ in all_entries(store)]
    for rel in releases(store):
        if rel["suite"] != suite or (root_filter and rel["root"] != root_filter):
            continue
        prefix = f"{rel['root']}/dists/{suite}/"
        for key in [k for k in keys if k.startswith(prefix)]:
            store.drop(key)
            _prune_dirs(store, key)
            removed.append(key)
    record_run(store, "releases remove", {"name": name, "removed": len(removed)})
    return removed


# -- stale copies ----------------------------------------------------------------------


def record_index_refs(store: CacheStore, index_key: str) -> int:
    """Remember what index_key lists, so downloads of those files are checked against it on commit."""
    listed = index_refs(store, index_key)
    store.record_refs(index_key, listed)
    return len(listed)


def record_all_refs(store: CacheStore) -> int:
    """Rebuild what every cached package index lists (a cache from before the record was kept)."""
    keys = set(store.keys())
    n = 0
    for key in [k for k in keys if is_package_index(k, keys.__contains__)]:
        try:
            n += record_index_refs(store, key)
        except (OSError, ValueError, StoreError) as e:
            log.warning("pkgcache: cannot read index %s: %s", key, e)
    return n


def drop_stale_for_index(store: CacheStore, index_key: str,
                         listed: list[Listed] | None = None) -> list[str]:
    """After index_key was refreshed: drop cached package files it lists with another size or SHA-256.
    listed: what the index lists, when the caller has read it already (index_refs)."""
    root = index_root(index_key, lambda k: store.get_entry(k) is not None)
    if root is None:
        return []
    dropped = []
    for ref in listed if listed is not None else index_refs(store, index_key):
        key = ref.key
        if not vouches_for(index_key, root, key):
            continue
        e = store.get_entry(key)  # one lookup per listed file: the cost follows the index, not the cache
        if e is None or e.kind != "immutable" or (ref.size is not None and ref.size < 0):
            continue
        if why := _differs(store, e, ref):
            store.drop(key)
            dropped.append(key)
            log.warning("pkgcache: dropped stale copy of %s: %s", key, why)
    return dropped


def drop_unvouched(store: CacheStore, keys: list[str]) -> list[str]:
    """Drop the cached package files among keys that what the cached indexes now list disowns (files committed
    while an index's listing was being recorded, before the check on commit could see it)."""
    dropped = []
    for key in keys:
        e = store.get_entry(key)
        ref = store.expected(key)
        if e is None or e.kind != "immutable" or (ref is None and store.expected_check(key) is None):
            continue
        listed = Listed(key, ref[0] if ref else None, ref[1] if ref else None, store.expected_check(key))
        if why := _differs(store, e, listed):
            store.drop(key)
            dropped.append(key)
            log.warning("pkgcache: dropped %s, stored while its index's listing was being recorded: %s", key, why)
    return dropped


def _differs(store: CacheStore, e: Entry, ref: Listed) -> str | None:
    """How a cached copy differs from what a refreshed index lists (None: it does not)."""
    if ref.size is not None and e.length != ref.size:
        return f"the index lists {ref.size} bytes, the copy has {e.length}"
    if ref.sha256 and e.sha256 != ref.sha256:
        return f"the index lists SHA-256 {ref.sha256}, the copy has {e.sha256}"
    if ref.check:
        try:
            return check_file(str(store.body_path(e.key)), ref.check)
        except (OSError, StoreError) as err:
            return f"cannot be read: {err}"
    return None


def load_json_list(store: CacheStore, name: str, field_name: str) -> dict[str, Any]:
    return read_json(_private(store, name), {}).get(field_name, {})



def take_in_index(store: CacheStore, index_key: str,
                  checked: Callable[[list[Listed], list[str]], None] | None = None) -> None:
    """A refreshed package index, read once: the copies it lists with other bytes are dropped, `checked` is
    told (hits may go on from there), then what it lists is recorded for the checks on commit."""
    listed = index_refs(store, index_key)
    dropped = drop_stale_for_index(store, index_key, listed)
    if checked is not None:
        checked(listed, dropped)
    store.record_refs(index_key, listed)
    if tracks_withdrawals(index_key) and listed:
        for key in store.withdrawn.take_in(index_key, (r.key for r in listed), lambda k: store.get_entry(k) is not None):
            log.warning("pkgcache: %s no longer lists %s: kept, and named on the dashboard", index_key, key)
