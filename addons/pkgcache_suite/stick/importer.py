"""Import what `pkgcache fetch` put in a datastore into the cache, verifying every file first.

Runs on a worker thread (hashing a stick's worth of packages must not stall the
proxy).  Nothing in the datastore is trusted: URLs are re-mapped with the
cache's own safe key mapping; files must be regular files reached without a
link, of the announced size and SHA-256, agreeing with what a cached index
lists, and from an origin the site uses; the stick's dates are clamped and its
pages carry none of its validators.  A file that fails is reported and left
where it is, and the others are imported.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pkgcache_suite.indexes.filecheck import check_fd
from pkgcache_suite.signing import apksign, gpgv
from pkgcache_suite.signing.policy import (
    MAX_SIGNATURE, MAX_SIGNED, ORIGIN_HEAD, detached_suffix, is_apkindex, is_signed_index, keyring_dirs,
)
from pkgcache_suite.stick.datastore import LINK_ERRNOS, Datastore, DatastoreError
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


def asked_by(key_of: Callable[[str], str], urls: Iterable[str], cached_origins: Iterable[str]) -> Callable[[str], bool]:
    """Whether the site has any use for a URL: its origin (the first name of its key) is one that a wanted
    URL or a stated request's repository names, or one the cache already holds files of.  A stick cannot
    bring pages for a host nobody here uses."""
    origins = set(cached_origins)
    for u in urls:
        try:
            origins.add(key_of(u).split("/", 1)[0])
        except (UnsafeURL, ValueError, TypeError, AttributeError):
            continue

    def asked(url: str) -> bool:
        try:
            return key_of(url).split("/", 1)[0] in origins
        except (UnsafeURL, ValueError, TypeError, AttributeError):
            return False
    return asked


def _fetched(rec: dict[str, Any]) -> float:
    """When a stick says its copy was fetched, never later than now (0: it does not say)."""
    try:
        return min(float(rec.get("fetched") or 0), time.time())
    except (TypeError, ValueError):
        return 0.0


STICK_AGE = 15 * 86400.0  # a stick's "not there upstream" is dated this long ago: offline it answers, online not


@dataclass(frozen=True)
class Vouching:
    """What an import's signed indexes verify against: pkgcache_keyrings, and a repository's own (by key)."""

    configured: tuple[Path, ...] = ()
    repo: Callable[[str], tuple[Path, ...] | None] | None = None


def import_datastore(store: CacheStore, classifier: Classifier, ds: Datastore,
                     key_of: Callable[[str], str] = key_for_url,
                     asked: Callable[[str], bool] | None = None, keyrings: tuple[Path, ...] = (),
                     repo_keyrings: Callable[[str], tuple[Path, ...] | None] | None = None) -> ImportResult:
    """key_of maps a URL to the key the proxy files it under (remapped repositories share a namespace);
    asked: whether the site has any use for a URL (None: an admin imports everything on purpose); keyrings:
    what every signed index must verify against (pkgcache_keyrings; signing/policy.py); repo_keyrings(key): its
    repository's own, when its Remap line names them."""
    res = ImportResult()
    try:
        manifest = ds.read_manifest()
    except DatastoreError as e:
        res.error = str(e)
        return res
    files: dict[str, Any] = manifest.get("files", {})
    if not isinstance(files, dict):
        res.error = "manifest.json: files is not a table"
        return res
    _requests(manifest, res)
    res.settled = [u for u in manifest.get("skipped", {})]
    res.settled += [u for u, f in manifest.get("failed", {}).items() if isinstance(f, dict) and f.get("permanent")]
    _remember_absent(store, manifest, key_of, asked)
    for url, rec in files.items():
        why = _import_one(store, classifier, ds, key_of, asked, url, rec, res, Vouching(keyrings, repo_keyrings))
        if why is not None:
            res.error = why
            break
    return res


def _import_one(store: CacheStore, classifier: Classifier, ds: Datastore, key_of: Callable[[str], str],
                asked: Callable[[str], bool] | None, url: Any, rec: Any, res: ImportResult,
                keyrings: Vouching) -> str | None:
    """One manifest entry: imported, already there, or rejected with its reason; a string when the
    datastore itself failed (the stick went away) and the import must stop."""
    try:
        key = key_of(url)
        kind = classifier.classify(url, urlsplit(url).path or "/")
        size, sha = int(rec["size"]), str(rec["sha256"]).lower()
    except (UnsafeURL, DatastoreError, KeyError, TypeError, ValueError, AttributeError) as e:
        res.rejected[str(url)[:2000]] = f"bad manifest entry: {e}"
        return None
    if asked is not None and not asked(url):
        res.rejected[url] = "not asked for: no wanted URL, and nothing in the cache, is from its origin"
        return None
    if kind is Kind.PASS:
        kind = Kind.VOLATILE  # fetched on purpose: keep it, revalidated when online
    current = store.lookup(key)
    if current is not None and current.sha256 == sha:
        res.already.append(url)
        return None
    refused = _contradicts(store, key, kind, current, size, sha)
    if refused is not None:
        res.rejected[url] = refused
        return None
    if current is not None and _fetched(rec) <= current.fetched:
        res.already.append(url)  # ours is at least as new
        return None
    return _place(store, ds, key, url, kind, size, sha, rec, res, keyrings)


def _signature(ds: Datastore, url: str, suffix: str) -> bytes | None:
    """The signature file the datastore holds beside a signed index (None: it holds none)."""
    try:
        fd = ds.open_file(url + suffix)
    except (DatastoreError, OSError):
        return None
    try:
        return os.pread(fd, MAX_SIGNATURE + 1, 0)
    finally:
        os.close(fd)


def _unsigned(store: CacheStore, ds: Datastore, key: str, url: str, fd: int,
              keyrings: Vouching) -> str | None:
    """Why a signed index from a datastore does not verify (None: it does, or nothing vouches for it)."""
    if not is_signed_index(key):
        return None
    body = os.pread(fd, MAX_SIGNED + 1, 0)
    head = store.read_head(key, ORIGIN_HEAD)
    dirs = keyring_dirs(keyrings.configured, body, head, key, keyrings.repo(key) if keyrings.repo else None)
    if not dirs:
        return None
    if len(body) > MAX_SIGNED:
        return "larger than any signed index"
    if is_apkindex(key):
        return apksign.verify(body, dirs)
    if (suffix := detached_suffix(key)) is None:
        return gpgv.verify_now(body, dirs)
    signature = _signature(ds, url, suffix)
    return f"the datastore holds no {suffix} signature beside it" if signature is None \
        else gpgv.verify_now(body, dirs, signature)


def _contradicts(store: CacheStore, key: str, kind: Kind, current: Any, size: int, sha: str) -> str | None:
    """Why a stick's file must not replace what the cache knows (None: it may, or it is simply older)."""
    ref = store.expected(key)
    if ref is not None and ((ref[0] is not None and ref[0] != size) or (ref[1] is not None and ref[1] != sha)):
        return f"a cached index lists it with size {ref[0]} and SHA-256 {ref[1]}; the datastore's is {size} {sha}"
    if current is not None and kind is Kind.IMMUTABLE:
        return f"cache already holds a different copy (sha256 {current.sha256}); package files are immutable"
    return None


def _place(store: CacheStore, ds: Datastore, key: str, url: str, kind: Kind, size: int, sha: str,
           rec: dict[str, Any], res: ImportResult, keyrings: Vouching) -> str | None:
    now = time.time()
    # a stick's dates are clamped, and a page keeps no validator of the stick's: online, the origin's
    # answer replaces it rather than a 304 confirming the stick's copy
    meta = {"content_type": rec.get("content_type"), "fetched": _fetched(rec) or now, "validated": 0.0}
    if kind is Kind.IMMUTABLE:
        meta |= {"last_modified": rec.get("last_modified"), "etag": rec.get("etag")}
    try:
        fd = ds.open_file(url)
    except FileNotFoundError:
        res.rejected[url] = "listed in the manifest but missing from files/"
        return None
    except (DatastoreError, OSError) as e:
        if isinstance(e, DatastoreError) or e.errno in LINK_ERRNOS or e.errno == errno.EINVAL:
            res.rejected[url] = f"not a plain file of the datastore (a link on the way?): {e}"
            return None
        return f"datastore read failed: {e}"
    try:
        if kind is Kind.IMMUTABLE and (check := store.expected_check(key)) and (why := check_fd(fd, check)):
            res.rejected[url] = f"verification failed: {why}"  # the control checksum, the .sha1 the cache has
            return None
        if why := _unsigned(store, ds, key, url, fd, keyrings):
            res.rejected[url] = f"a signed index that does not verify: {why}"  # a tampered stick plants none
            return None
        place_file(store, key, url, kind.value, fd, size, sha, meta)
        res.imported.append(url)
    except VerifyError as e:
        res.rejected[url] = f"verification failed: {e}"
    except StoreError as e:
        if e.errno == errno.EBUSY:  # being downloaded; next round
            res.busy.append(url)
        else:
            res.rejected[url] = f"cannot store: {e}"
    except OSError as e:  # the stick went away mid-copy: nothing placed, try next time
        return f"datastore read failed: {e}"
    finally:
        os.close(fd)
    return None


def _remember_absent(store: CacheStore, manifest: dict[str, Any], key_of: Callable[[str], str],
                     asked: Callable[[str], bool] | None) -> None:
    """What fetch found does not exist upstream is remembered as such: offline it is answered 404 without
    being wanted again (zypper's probes, apt's guessed index names).  Dated STICK_AGE ago, so that online a
    stick never answers for an origin that can."""
    gone = [u for u, f in manifest.get("failed", {}).items() if isinstance(f, dict)
            and f.get("permanent") and str(f.get("reason", "")).startswith(("HTTP 404", "HTTP 410"))]
    gone += [u for u, f in manifest.get("skipped", {}).items() if isinstance(f, dict)]
    when = time.time() - STICK_AGE
    for url in gone:
        try:
            if asked is None or asked(url):
                store.remember_missing(key_of(url), when)
        except (UnsafeURL, TypeError, ValueError, AttributeError):
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
        ds.write_report({
            "version": 1, "when": time.time(), "imported": res.imported, "already_cached": len(res.already),
            "rejected": res.rejected, "busy": res.busy, "error": res.error,
        })
    except OSError as e:
        log.warning("pkgcache: cannot write import report to %s: %s", ds.root, e)
