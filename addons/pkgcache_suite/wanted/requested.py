"""The part of `pkgcache fetch` that serves stated requests: which suites to fetch, and what apt must resolve.

A stated request names packages, the client's sources and its architectures.
Fetch first brings each source's InRelease and the indexes the client uses
(see indexplan); this module then hands apt (aptresolve) those indexes and the
client's dpkg status, and returns the package files to download in the same
trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pkgcache_suite.indexes.debian import DebianIndex, by_hash_name
from pkgcache_suite.resolve import aptresolve, rpmmeta, rpmresolve
from pkgcache_suite.resolve.resolution import Resolution, plain_relative
from pkgcache_suite.stick.datastore import Datastore, DatastoreError
from pkgcache_suite.wanted.wantspec import Source, WantError, WantRequest, request_from_json


def read_requests(doc: dict[str, Any]) -> tuple[list[WantRequest], list[str]]:
    """The stated requests of a wanted list, and why any were ignored (a datastore is untrusted input)."""
    out: list[WantRequest] = []
    bad: list[str] = []
    for r in doc.get("requests", []) or []:
        try:
            out.append(request_from_json(r))
        except WantError as e:
            bad.append(str(e))
    return out, bad


def first_urls(requests: list[WantRequest]) -> list[str]:
    """Each stated source's InRelease (each rpm repository's repomd.xml): what the client asks first, and what
    vouches for everything else."""
    debian = [s.base + "InRelease" for r in requests for s in r.sources]
    return list(dict.fromkeys(debian + [base + rpmmeta.REPOMD for r in requests for base in r.repos]))


def fallback_urls(base: str) -> list[str]:
    """A suite without InRelease is read by apt from Release and its detached signature."""
    return [base + "Release", base + "Release.gpg"]


def _suite(ds: Datastore, index: DebianIndex, files: dict[str, Any], req: WantRequest,
           source: Source) -> aptresolve.Suite | None:
    base = source.base
    for name in ("InRelease", "Release"):
        info = index.releases.get(base + name)
        if info is not None and base + name in files:
            break
    else:
        return None
    components = source.components or tuple(info.components)  # sources seen in requests may not name them
    archs = list(req.archs) + ["all"]
    indexes: dict[str, Path] = {}
    for entry, (_size, sha) in info.entries.items():
        parts = entry.split("/")
        if not plain_relative(entry) or len(parts) < 3 or parts[0] not in components \
                or not parts[-1].startswith("Packages"):
            continue
        if parts[-2].removeprefix("binary-") not in archs:
            continue
        hashed = base + by_hash_name(entry, sha)
        for url in (hashed, base + entry):
            if url in files:
                indexes[entry] = ds.file_path(url)
                break
    return aptresolve.Suite(source.repo, source.suite, components, ds.file_path(info.url), name, indexes)


def suites_for(ds: Datastore, index: DebianIndex, files: dict[str, Any], req: WantRequest) -> tuple[
        list[aptresolve.Suite], list[str]]:
    """The fetched suites of one request, and the ones that could not be fetched."""
    suites, missing = [], []
    for s in req.sources:
        got = _suite(ds, index, files, req, s)
        if got is None:
            missing.append(s.base)
        else:
            suites.append(got)
    return suites, missing


def status_file(ds: Datastore, req: WantRequest) -> tuple[bytes | None, str]:
    """The request's dpkg status, checked against its name (the digest); a bad one is ignored, with why."""
    if req.status_sha256 is None:
        return None, ""
    try:
        return ds.read_status(req.status_sha256), ""
    except (OSError, DatastoreError) as e:
        return None, f"its dpkg status is unusable ({e}); resolving as for a machine with nothing installed"


def _resolve_rpm(ds: Datastore, rpm: rpmmeta.RpmRepos, files: dict[str, Any],
                 req: WantRequest) -> Resolution:
    repos = [(base, rpm.fetched_tree(base, files, ds.file_path)) for base in req.repos if base + rpmmeta.REPOMD in files]
    missing = [base for base in req.repos if base + rpmmeta.REPOMD not in files]
    rpmdb, db_problem = status_file(ds, req)
    res = rpmresolve.resolve(req, repos, rpmdb)
    if missing:
        res.problems["repos"] = "could not fetch the repomd.xml of " + ", ".join(missing)
    if db_problem:
        res.problems["rpmdb"] = db_problem.replace("dpkg status", "rpmdb")
    return res


def resolve(ds: Datastore, index: DebianIndex, rpm: rpmmeta.RpmRepos, files: dict[str, Any],
            req: WantRequest) -> Resolution:
    """The resolver's answer for one request (apt's, or dnf's for rpm clients), with every reason it is
    incomplete in problems."""
    if req.format == "rpm":
        return _resolve_rpm(ds, rpm, files, req)
    if not aptresolve.available():
        res = Resolution()
        res.problems["*"] = ("apt-get is not installed here, so dependencies cannot be resolved: only the indexes "
                             "are fetched this trip (install apt, or fetch on a Debian or Ubuntu machine)")
        return res
    suites, missing = suites_for(ds, index, files, req)
    status, status_problem = status_file(ds, req)
    res = aptresolve.resolve(req, suites, status)
    if missing:
        res.problems["sources"] = "could not fetch the Release of " + ", ".join(missing)
    if status_problem:
        res.problems["status"] = status_problem
    return res
