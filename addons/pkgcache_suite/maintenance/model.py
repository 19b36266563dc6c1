"""Which cached files the cached repository indexes reference, with their sizes and SHA-256 sums.

Built from the cache itself (the parsers in indexes/ read streams; this module opens the files): every cached Debian Release/InRelease vouches for
its suite's indexes (also under by-hash names), every cached Packages/Sources
index for its package files; every cached RPM repomd.xml for its repodata, and
its primary.xml for its packages; every pacman .db for its packages (with
SHA-256); every Alpine APKINDEX for its packages' names and sizes only (its
checksums are not SHA-256 of the file: "limited").  A repository root
whose indexes could not be parsed carries the error, and maintenance refuses to
delete anything under it.
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

from pkgcache_suite.indexes.alpine import index_file_entries
from pkgcache_suite.indexes.arch import db_entries
from pkgcache_suite.indexes.compression import open_decompressed, open_tar
from pkgcache_suite.indexes.debian import by_hash_name, index_entries, parse_release
from pkgcache_suite.indexes.rpm import primary_entries, repomd_entries
from pkgcache_suite.policy.cachekey import UnsafeURL, _path_segments
from pkgcache_suite.storage import CacheStore, Entry, StoreError

_DEB_RELEASE = re.compile(r"^(?P<root>.+?)/dists/(?P<suite>.+)/(?P<name>InRelease|Release)$")
_RPM_REPOMD = re.compile(r"^(?P<root>.+)/repodata/repomd\.xml$")
_ARCH_DB = re.compile(r"^(?P<root>.+)/(?P<repo>[^/]+)\.db$")
_ALPINE = re.compile(r"^(?P<root>.+)/APKINDEX\.tar\.gz$")


@dataclass
class Ref:
    size: int
    sha256: str | None  # None where the index gives no SHA-256
    index: str  # key of the index that vouches for it


@dataclass
class RootModel:
    root: str  # key prefix: "mirror.example/debian" or "_repo_debrep"
    family: str  # debian | rpm
    root_url: str | None = None  # URL prefix matching root, from a cached index's own URL
    suites: dict[str, list[str]] = field(default_factory=dict)  # suite -> keys of its Release files
    refs: dict[str, Ref] = field(default_factory=dict)  # key -> what an index says about it
    package_refs_by_suite: dict[str, set[str]] = field(default_factory=dict)
    # key of a cached Packages/Sources index (a by-hash name too) -> (suite, its name in Release: main/binary-amd64/...)
    index_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def url_for(self, key: str) -> str | None:
        if self.root_url is None or not key.startswith(self.root + "/"):
            return None
        return self.root_url + key[len(self.root):]


@dataclass
class CacheModel:
    roots: dict[str, RootModel] = field(default_factory=dict)
    limited: list[str] = field(default_factory=list)  # roots whose index gives no SHA-256 (Alpine: sizes only)

    def root_of(self, key: str) -> RootModel | None:
        best = None
        for root in self.roots.values():
            if key.startswith(root.root + "/") and (best is None or len(root.root) > len(best.root)):
                best = root
        return best

    def ref(self, key: str) -> Ref | None:
        root = self.root_of(key)
        return root.refs.get(key) if root else None


def _key_join(root: str, rel: str) -> str | None:
    try:
        return "/".join([root, *_path_segments("/" + rel.lstrip("/"))])
    except UnsafeURL:
        return None


def _root_url(entry: Entry, key: str, root: str) -> str | None:
    tail = key[len(root):]
    return entry.url[: -len(tail)] if entry.url.endswith(tail) else None


def all_entries(store: CacheStore) -> Iterator[tuple[str, Entry]]:
    yield from store.entries()


def build_model(store: CacheStore, entries: dict[str, Entry] | None = None) -> CacheModel:
    entries = entries if entries is not None else dict(all_entries(store))
    model = CacheModel()
    for key, entry in sorted(entries.items()):
        m = _DEB_RELEASE.match(key)
        if m:
            _add_release(store, model, key, entry, m.group("root"), m.group("suite"), entries)
            continue
        m = _RPM_REPOMD.match(key)
        if m:
            _add_repomd(store, model, key, entry, m.group("root"), entries)
            continue
        m = _ARCH_DB.match(key)
        if m:
            _add_arch_db(store, model, key, entry, m.group("root"))
            continue
        m = _ALPINE.match(key)
        if m:
            _add_apkindex(store, model, key, entry, m.group("root"))
    return model


def _root(model: CacheModel, key: str, entry: Entry, root: str, family: str, suite: str) -> RootModel:
    rm = model.roots.setdefault(root, RootModel(root=root, family=family))
    rm.root_url = rm.root_url or _root_url(entry, key, root)
    rm.suites.setdefault(suite, []).append(key)
    rm.refs[key] = Ref(entry.length, entry.sha256, key)
    return rm


def _add_arch_db(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str) -> None:
    suite = key.rsplit("/", 1)[1]
    rm = _root(model, key, entry, root, "arch", suite)
    pkgs = rm.package_refs_by_suite.setdefault(suite, set())
    try:
        with open_tar(store.body_path(key)) as tar:
            for name, size, sha in db_entries(tar):
                k = _key_join(root, name)
                if k:
                    rm.refs[k] = Ref(size, sha, key)
                    pkgs.add(k)
                    sig = _key_join(root, f"{name}.sig")
                    if sig:
                        rm.refs.setdefault(sig, Ref(-1, None, key))
    except (OSError, StoreError, tarfile.TarError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse pacman database: {e}")


def _add_apkindex(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str) -> None:
    """Names and sizes only (limited): APKINDEX gives no SHA-256 of the file."""
    rm = _root(model, key, entry, root, "alpine", "APKINDEX")
    pkgs = rm.package_refs_by_suite.setdefault("APKINDEX", set())
    if root not in model.limited:
        model.limited.append(root)
    try:
        for name, size, _check in index_file_entries(store.body_path(key)):
            k = _key_join(root, name)
            if k:
                rm.refs[k] = Ref(size, None, key)
                pkgs.add(k)
    except (OSError, StoreError, tarfile.TarError, KeyError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse APKINDEX: {e}")


def _add_release(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str, suite: str,
                 entries: dict[str, Entry]) -> None:
    rm = _root(model, key, entry, root, "debian", suite)
    base = f"{root}/dists/{suite}"
    try:
        with open(store.body_path(key), "rb") as f:
            listed = parse_release(f).files
    except (OSError, StoreError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse: {e}")
        return
    if key.endswith("/Release") and f"{base}/Release.gpg" in entries:
        gpg = entries[f"{base}/Release.gpg"]
        rm.refs[f"{base}/Release.gpg"] = Ref(gpg.length, gpg.sha256, key)
    pkgs = rm.package_refs_by_suite.setdefault(suite, set())
    for name, size, sha in listed:
        for k in (_key_join(base, name), _key_join(base, by_hash_name(name, sha))):
            if k is None:
                continue
            rm.refs[k] = Ref(size, sha, key)
            stem = name.rsplit("/", 1)[-1].split(".")[0]
            if k in entries and stem in ("Packages", "Sources"):
                rm.index_names[k] = (suite, name)
                try:
                    pkgs.update(_add_packages(store, rm, k, root))
                except Exception as e:  # any failure to read an index must block deletion
                    rm.errors.append(f"{k}: cannot parse {stem} index: {e}")


def _add_packages(store: CacheStore, rm: RootModel, key: str, root: str) -> set[str]:
    added: set[str] = set()
    with open_decompressed(store.body_path(key)) as stream:
        for rel, size, sha in index_entries(stream):
            k = _key_join(root, rel)
            if k:
                rm.refs[k] = Ref(size, sha or None, key)
                added.add(k)
    return added


def _add_repomd(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str,
                entries: dict[str, Entry]) -> None:
    rm = _root(model, key, entry, root, "rpm", "repodata")
    try:
        with open(store.body_path(key), "rb") as f:
            listed = list(repomd_entries(f))
    except (OSError, StoreError, ET.ParseError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse: {e}")
        return
    pkgs = rm.package_refs_by_suite.setdefault("repodata", set())
    for item in listed:
        k = _key_join(root, item.href)
        if k is None:
            continue
        rm.refs[k] = Ref(item.size if item.size is not None else entries.get(k, entry).length, item.sha256, key)
        if item.type == "primary" and k in entries:
            try:
                with open_decompressed(store.body_path(k)) as stream:
                    for pkg in primary_entries(stream):
                        pk = _key_join(root, pkg.href)
                        if pk:
                            rm.refs[pk] = Ref(pkg.size or 0, pkg.sha256, k)
                            pkgs.add(pk)
            except Exception as e:
                rm.errors.append(f"{k}: cannot parse primary: {e}")
