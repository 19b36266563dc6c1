"""What a cached package index lists: each file's key, and the size and digest it must have.

One reader per format (Debian Packages/Sources, RPM primary, pacman's database, Alpine APKINDEX, a PyPI simple
page, an npm document, cargo's sparse index files, a Maven artifact's .sha1);
what they return is recorded for the checks on commit and compared with cached copies after a refresh.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from typing import NamedTuple

from pkgcache_suite.indexes import alpine, arch, cargo, npm, pypi
from pkgcache_suite.indexes.compression import open_decompressed, open_tar
from pkgcache_suite.indexes.filecheck import SHA1_PREFIX
from pkgcache_suite.indexes.kinds import PACKAGE_INDEX
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for_url
from pkgcache_suite.storage import CacheStore, StoreError

APKINDEX = re.compile(r"^(?P<root>.+)/APKINDEX\.tar\.gz$")
ARCH_DB = re.compile(r"^(?P<root>.+)/[^/]+\.db$")
# a simple page (HTML, or its PEP 691 JSON variant) and an npm document (its full or abbreviated variant): the
# files they list may be on another host (files.pythonhosted.org, a registry's CDN)
PYPI_PAGE = re.compile(r"^(?P<root>[^/]+)/(?:.+/)?simple/[^/]+/_index_(?:~pypi-json)?$")
NPM_DOC = re.compile(r"^(?P<root>[^/]+)/(?:@[^/]+%2[Ff])?[^/@~]+~(?:json|npm-abbreviated)$")
# a released Maven artifact's .sha1 beside it: it vouches for one file
MAVEN_SHA1 = re.compile(r"^(?P<file>(?P<root>.+)/(?P<a>[^/]+)/(?P<v>[^/]+)/(?P=a)-(?P=v)(?:-[^/]+)?"
                        r"\.(?!sha1$|md5$|asc$)[A-Za-z0-9.]+)\.sha1$")
_SHA1 = re.compile(rb"^\s*([0-9a-fA-F]{40})\b")
MAX_SIDECAR = 4096


class Listed(NamedTuple):
    key: str
    size: int | None  # None: the index does not say (cargo)
    sha256: str | None
    check: str | None = None  # another digest to check the file by (alpine.CHECK_PREFIX...)


def index_root(index_key: str, has: Callable[[str], bool] | None = None) -> str | None:
    """The repository root (key prefix) whose package files an index lists; None when the key is no package
    index.  has(key): whether the cache holds a key, which tells a cargo index file (its registry's
    config.json is cached) from any path shaped like one."""
    if "/dists/" in index_key:
        return index_key.split("/dists/", 1)[0]
    if "/repodata/" in index_key:
        return index_key.split("/repodata/", 1)[0]
    if m := APKINDEX.match(index_key):
        return m.group("root")
    if (m := MAVEN_SHA1.match(index_key)) and not m.group("v").endswith("-SNAPSHOT"):
        return m.group("root")
    if m := (ARCH_DB.match(index_key) or PYPI_PAGE.match(index_key) or NPM_DOC.match(index_key)):
        return m.group("root")
    if has is not None and (named := cargo.index_name(index_key)) and has(f"{named[0]}/config.json"):
        return named[0]
    return None


def is_package_index(key: str, has: Callable[[str], bool]) -> bool:
    """Whether a committed body is an index whose listing must be taken in."""
    return bool(PACKAGE_INDEX.search(key) or APKINDEX.match(key) or is_sidecar(key) or ARCH_DB.match(key)
                or PYPI_PAGE.match(key) or NPM_DOC.match(key)) or (
        cargo.index_name(key) is not None and index_root(key, has) is not None)


def tracks_withdrawals(index_key: str) -> bool:
    """Indexes of one package (or one small repository) whose deleted versions are worth naming: not a
    distribution's Packages or primary, where a release moves on by the thousand."""
    return bool(PYPI_PAGE.match(index_key) or NPM_DOC.match(index_key) or APKINDEX.match(index_key)
                or ARCH_DB.match(index_key) or (cargo.index_name(index_key) and "/dists/" not in index_key))


def vouches_for(index_key: str, root: str, key: str) -> bool:
    """Whether what index_key lists may decide about key: a file of its own repository, or anywhere for a
    simple page or an npm document, whose files are often on another host."""
    if PYPI_PAGE.match(index_key) or NPM_DOC.match(index_key):
        return True
    return key.startswith(root + "/") and "/dists/" not in key and "/repodata/" not in key


def is_sidecar(key: str) -> bool:
    """A checksum file vouching for the one file beside it: read in a moment, never worth a child process."""
    m = MAVEN_SHA1.match(key)
    return m is not None and not m.group("v").endswith("-SNAPSHOT")


def index_refs(store: CacheStore, index_key: str) -> list[Listed]:
    """Every file a cached package index lists; [] for a key that is none."""
    root = index_root(index_key, lambda k: store.get_entry(k) is not None)
    if root is None:
        return []
    if "/repodata/" in index_key:
        from pkgcache_suite.maintenance.model import build_model

        rm = build_model(store).roots.get(root)
        return [Listed(k, r.size, r.sha256) for k, r in (rm.refs.items() if rm else []) if r.index == index_key]
    if APKINDEX.match(index_key):
        return _apkindex(store, index_key, root)
    if ARCH_DB.match(index_key):
        return _arch_db(store, index_key, root)
    if PYPI_PAGE.match(index_key) or NPM_DOC.match(index_key):
        return _by_url(store, index_key)
    if m := MAVEN_SHA1.match(index_key):
        with open(store.body_path(index_key), "rb") as f:
            digest = _SHA1.match(f.read(MAX_SIDECAR))
        return [Listed(m.group("file"), None, None, SHA1_PREFIX + digest.group(1).decode().lower())] if digest else []
    if "/dists/" not in index_key:
        return _cargo(store, index_key, root)
    from pkgcache_suite.indexes.debian import index_entries
    from pkgcache_suite.maintenance.model import _key_join

    listed = []
    with open_decompressed(store.body_path(index_key)) as stream:
        for rel, size, sha in index_entries(stream):
            if k := _key_join(root, rel):
                listed.append(Listed(k, size, sha))
    return listed


def _apkindex(store: CacheStore, index_key: str, root: str) -> list[Listed]:
    """An APKINDEX's packages, v2 (a tar with a text index) or v3 (apk-tools 3's ADB)."""
    from pkgcache_suite.maintenance.model import _key_join

    listed = []
    try:
        for name, size, check in alpine.index_file_entries(store.body_path(index_key)):
            if k := _key_join(root, name):
                listed.append(Listed(k, size, None, check))
    except (tarfile.TarError, KeyError, EOFError, ValueError):
        return []
    return listed


def _arch_db(store: CacheStore, index_key: str, root: str) -> list[Listed]:
    from pkgcache_suite.maintenance.model import _key_join

    try:
        with open_tar(store.body_path(index_key)) as tar:
            return [Listed(k, size, sha) for name, size, sha in arch.db_entries(tar) if (k := _key_join(root, name))]
    except (tarfile.TarError, EOFError, ValueError):
        return []  # a .db that is no pacman database


def _by_url(store: CacheStore, index_key: str) -> list[Listed]:
    """A simple page's or npm document's files, by their absolute URLs (relative ones against the page's)."""
    entry = store.get_entry(index_key)
    if entry is None or not entry.url:
        return []
    with open(store.body_path(index_key), "rb") as f:
        data = f.read(max(pypi.MAX_PAGE, npm.MAX_DOCUMENT) + 1)
    out = []
    refs: list[tuple[str, str | None, str | None]]
    try:
        if NPM_DOC.match(index_key):
            refs = [(t.url, None, t.check) for t in npm.tarballs(data)]
        else:
            refs = [(f.url, f.sha256, None) for f in pypi.files(data, entry.url) if f.sha256]
    except ValueError:
        return []
    for url, sha, check in refs:
        try:
            out.append(Listed(key_for_url(url), None, sha, check))
        except (UnsafeURL, ValueError):
            continue
    return out


def _cargo(store: CacheStore, index_key: str, root: str) -> list[Listed]:
    """The .crate of every version an index file lists, by the download URL its registry's config.json
    gives, with the SHA-256 the index gives (cargo gives no size)."""
    try:
        with open(store.body_path(f"{root}/config.json"), "rb") as f:
            dl = cargo.download_template(f)
    except (OSError, StoreError, ValueError):
        return []
    listed = []
    with open(store.body_path(index_key), "rb") as f:
        for v in cargo.versions(f):
            try:
                key = key_for_url(cargo.download_url(dl, v))
            except (UnsafeURL, ValueError):
                continue
            if v.cksum:
                listed.append(Listed(key, None, v.cksum))
    return listed

