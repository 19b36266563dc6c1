"""Import what `pkgcache fetch` put in a datastore into the cache, verifying every file first.

Runs on a worker thread (hashing a stick's worth of packages must not stall the
proxy).  Nothing in the datastore is trusted: URLs are re-mapped with the
cache's own safe key mapping, files must be regular files of the announced size
and SHA-256, and a file that fails is reported and left where it is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pkgcache_suite.offline.datastore import Datastore, DatastoreError, atomic_write_json
from pkgcache_suite.policy.rules import Classifier, Kind
from pkgcache_suite.storage import CacheStore, StoreError, VerifyError, place_file
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for_url

log = logging.getLogger("pkgcache")


@dataclass
class ImportResult:
    imported: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # fetch found these do not exist upstream
    fulfilled: list[str] = field(default_factory=list)  # stated requests fetch resolved completely
    unresolved: dict[str, dict[str, str]] = field(default_factory=dict)  # request id -> package -> why
    error: str | None = None

    @property
    def done_urls(self) -> list[str]:
        """URLs to drop from the wanted list: now cached, or known not to exist (asked again, they return)."""
        return self.imported + self.already + self.settled


def import_datastore(store: CacheStore, classifier: Classifier, ds: Datastore,
                     key_of: Callable[[str], str] = key_for_url) -> ImportResult:
    """key_of maps a URL to the key the proxy files it under (remapped repositories share a namespace)."""
    res = ImportResult()
    try:
        manifest = ds.read_manifest()
    except DatastoreError as e:
        res.error = str(e)
        return res
    files: dict[str, Any] = manifest.get("files", {})
    _requests(manifest, res)
    res.settled = [u for u in manifest.get("skipped", {})]
    res.settled += [u for u, f in manifest.get("failed", {}).items() if isinstance(f, dict) and f.get("permanent")]
    _remember_absent(store, manifest, key_of)
    for url, rec in files.items():
        try:
            key = key_of(url)
            kind = classifier.classify(url, urlsplit(url).path or "/")
            size, sha = int(rec["size"]), str(rec["sha256"])
            src = ds.file_path(url)
        except (UnsafeURL, DatastoreError, KeyError, TypeError, ValueError) as e:
            res.rejected[url] = f"bad manifest entry: {e}"
            continue
        if kind is Kind.PASS:
            kind = Kind.VOLATILE  # fetched on purpose: keep it, revalidated when online
        current = store.lookup(key)
        if current is not None and current.sha256 == sha.lower():
            res.already.append(url)
            continue
        if current is not None and kind is Kind.IMMUTABLE:
            res.rejected[url] = (f"cache already holds a different {url} (sha256 {current.sha256}); "
                                 "package files are immutable")
            continue
        if current is not None and float(rec.get("fetched") or 0) <= current.fetched:
            res.already.append(url)  # ours is at least as new
            continue
        try:
            place_file(store, key, url, kind.value, src, size, sha, rec)
            res.imported.append(url)
        except VerifyError as e:
            res.rejected[url] = f"verification failed: {e}"
        except FileNotFoundError:
            res.rejected[url] = "listed in the manifest but missing from files/"
        except StoreError as e:
            if e.errno == 16:  # EBUSY: being downloaded; next round
                res.busy.append(url)
            else:
                res.rejected[url] = f"cannot store: {e}"
        except OSError as e:  # the stick went away mid-copy: nothing placed, try next time
            res.error = f"datastore read failed: {e}"
            break
    return res


def _remember_absent(store: CacheStore, manifest: dict[str, Any], key_of: Callable[[str], str]) -> None:
    """What fetch found does not exist upstream is remembered as such, as a 404 seen online would be: offline
    it is answered 404 without being wanted again (zypper's probes, apt's guessed index names)."""
    gone = [(u, f.get("when")) for u, f in manifest.get("failed", {}).items() if isinstance(f, dict)
            and f.get("permanent") and str(f.get("reason", "")).startswith(("HTTP 404", "HTTP 410"))]
    gone += [(u, f.get("when")) for u, f in manifest.get("skipped", {}).items() if isinstance(f, dict)]
    for url, when in gone:
        try:
            store.remember_missing(key_of(url), float(when or time.time()))
        except (UnsafeURL, TypeError, ValueError):
            continue


def _requests(manifest: dict[str, Any], res: ImportResult) -> None:
    """What fetch made of the stated requests: resolved ones leave the list, the others carry apt's reasons."""
    for rid, outcome in (manifest.get("requests") or {}).items():
        if not isinstance(rid, str) or not isinstance(outcome, dict):
            continue
        problems = outcome.get("problems") or {}
        if isinstance(problems, dict) and problems:
            res.unresolved[rid] = {str(k)[:200]: str(v)[:2000] for k, v in problems.items()}
        else:
            res.fulfilled.append(rid)


def write_report(ds: Datastore, res: ImportResult) -> None:
    try:
        atomic_write_json(ds.report_path, {
            "version": 1, "when": time.time(), "imported": res.imported, "already_cached": len(res.already),
            "rejected": res.rejected, "busy": res.busy, "error": res.error,
        })
    except OSError as e:
        log.warning("pkgcache: cannot write import report to %s: %s", ds.root, e)
