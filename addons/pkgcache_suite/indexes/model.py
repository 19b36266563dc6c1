"""Which cached files the cached repository indexes reference, with their sizes and SHA-256 sums.

Built from the cache itself: every cached Debian Release/InRelease vouches for
its suite's indexes (also under by-hash names), every cached Packages/Sources
index for its package files; every cached RPM repomd.xml for its repodata, and
its primary.xml for its packages; every pacman .db for its packages (with
SHA-256); every Alpine APKINDEX for its packages' names and sizes only (its
checksums are not SHA-256 of the file: "limited").  A repository root
whose indexes could not be parsed carries the error, and maintenance refuses to
delete anything under it.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from dataclasses import dataclass, field

from debian import deb822

from pkgcache_suite.indexes.debian import index_entries, open_index
from pkgcache_suite.storage import CacheStore, Entry, StoreError
from pkgcache_suite.policy.cachekey import UnsafeURL, _path_segments

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


def _open_tar(path: Any) -> tarfile.TarFile:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":  # pacman databases are often zstd
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(open(path, "rb").read())
        return tarfile.open(fileobj=io.BytesIO(data))
    return tarfile.open(path)  # gzip, xz, bzip2 or plain


def _add_arch_db(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str) -> None:
    """pacman's repo.db: a tarball of <pkg>/desc files naming %FILENAME%, %CSIZE% and %SHA256SUM%."""
    rm = model.roots.setdefault(root, RootModel(root=root, family="arch"))
    rm.root_url = rm.root_url or _root_url(entry, key, root)
    rm.suites.setdefault(key.rsplit("/", 1)[1], []).append(key)
    rm.refs[key] = Ref(entry.length, entry.sha256, key)
    pkgs = rm.package_refs_by_suite.setdefault(key.rsplit("/", 1)[1], set())
    try:
        with _open_tar(store.body_path(key)) as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith("/desc"):
                    continue
                fields: dict[str, str] = {}
                text = tar.extractfile(member).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                for block in text.split("\n\n"):
                    lines = block.strip().splitlines()
                    if len(lines) >= 2 and lines[0].startswith("%"):
                        fields[lines[0].strip("%")] = lines[1].strip()
                fn = fields.get("FILENAME")
                k = _key_join(root, fn) if fn else None
                if k and fields.get("CSIZE", "").isdigit():
                    rm.refs[k] = Ref(int(fields["CSIZE"]), (fields.get("SHA256SUM") or "").lower() or None, key)
                    pkgs.add(k)
                    sig = _key_join(root, f"{fn}.sig")
                    if sig:
                        rm.refs.setdefault(sig, Ref(-1, None, key))
    except (OSError, StoreError, tarfile.TarError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse pacman database: {e}")


def _add_apkindex(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str) -> None:
    """Alpine's APKINDEX names each package with its size, but its checksum is a SHA-1 of the control
    segment only: the model knows names and sizes (limited), not SHA-256 sums."""
    rm = model.roots.setdefault(root, RootModel(root=root, family="alpine"))
    rm.root_url = rm.root_url or _root_url(entry, key, root)
    rm.suites.setdefault("APKINDEX", []).append(key)
    rm.refs[key] = Ref(entry.length, entry.sha256, key)
    pkgs = rm.package_refs_by_suite.setdefault("APKINDEX", set())
    if root not in model.limited:
        model.limited.append(root)
    try:
        with _open_tar(store.body_path(key)) as tar:
            member = tar.extractfile("APKINDEX")
            text = member.read().decode("utf-8", "replace") if member else ""
        for para in text.split("\n\n"):
            fields = dict(line.split(":", 1) for line in para.splitlines() if ":" in line)
            if "P" in fields and "V" in fields and fields.get("S", "").isdigit():
                k = _key_join(root, f"{fields['P']}-{fields['V']}.apk")
                if k:
                    rm.refs[k] = Ref(int(fields["S"]), None, key)
                    pkgs.add(k)
    except (OSError, StoreError, tarfile.TarError, KeyError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse APKINDEX: {e}")


def _add_release(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str, suite: str,
                 entries: dict[str, Entry]) -> None:
    rm = model.roots.setdefault(root, RootModel(root=root, family="debian"))
    rm.root_url = rm.root_url or _root_url(entry, key, root)
    rm.suites.setdefault(suite, []).append(key)
    base = f"{root}/dists/{suite}"
    rm.refs[key] = Ref(entry.length, entry.sha256, key)
    try:
        with open(store.body_path(key), "rb") as f:
            rel = deb822.Release(f)
        listed = rel.get("SHA256") or []
    except (OSError, StoreError, ValueError) as e:
        rm.errors.append(f"{key}: cannot parse: {e}")
        return
    if not listed:
        rm.errors.append(f"{key}: no SHA256 list (not a Release file?)")
        return
    if key.endswith("/Release") and f"{base}/Release.gpg" in entries:
        gpg = entries[f"{base}/Release.gpg"]
        rm.refs[f"{base}/Release.gpg"] = Ref(gpg.length, gpg.sha256, key)
    pkgs = rm.package_refs_by_suite.setdefault(suite, set())
    for item in listed:
        name, size, sha = item["name"], int(item["size"]), item["sha256"].lower()
        for k in (_key_join(base, name),
                  _key_join(base, posixpath.join(posixpath.dirname(name), "by-hash", "SHA256", sha))):
            if k is None:
                continue
            rm.refs[k] = Ref(size, sha, key)
            stem = posixpath.basename(name).split(".")[0]
            if k in entries and stem in ("Packages", "Sources"):
                try:
                    pkgs.update(_add_packages(store, rm, k, root))
                except Exception as e:  # any failure to read an index must block deletion
                    rm.errors.append(f"{k}: cannot parse {stem} index: {e}")


def _add_packages(store: CacheStore, rm: RootModel, key: str, root: str) -> set[str]:
    added: set[str] = set()
    for rel, size, sha in index_entries(store.body_path(key)):
        k = _key_join(root, rel)
        if k:
            rm.refs[k] = Ref(size, sha or None, key)
            added.add(k)
    return added


_RPM_NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


def _add_repomd(store: CacheStore, model: CacheModel, key: str, entry: Entry, root: str,
                entries: dict[str, Entry]) -> None:
    rm = model.roots.setdefault(root, RootModel(root=root, family="rpm"))
    rm.root_url = rm.root_url or _root_url(entry, key, root)
    rm.suites.setdefault("repodata", []).append(key)
    rm.refs[key] = Ref(entry.length, entry.sha256, key)
    try:
        tree = ET.parse(store.body_path(key))
    except (OSError, StoreError, ET.ParseError) as e:
        rm.errors.append(f"{key}: cannot parse: {e}")
        return
    pkgs = rm.package_refs_by_suite.setdefault("repodata", set())
    for data in tree.getroot().findall("repo:data", _RPM_NS):
        loc = data.find("repo:location", _RPM_NS)
        csum = data.find("repo:checksum", _RPM_NS)
        size = data.find("repo:size", _RPM_NS)
        if loc is None:
            continue
        k = _key_join(root, loc.get("href", ""))
        if k is None:
            continue
        sha = csum.text.strip().lower() if csum is not None and csum.get("type") == "sha256" and csum.text else None
        rm.refs[k] = Ref(int(size.text) if size is not None and size.text else entries.get(k, entry).length, sha, key)
        if data.get("type") == "primary" and k in entries:
            try:
                with open_index(store.body_path(k)) as f:
                    for _, el in ET.iterparse(f):
                        if el.tag.endswith("}package"):
                            ploc = el.find("common:location", _RPM_NS)
                            pcs = el.find("common:checksum", _RPM_NS)
                            psz = el.find("common:size", _RPM_NS)
                            if ploc is not None and psz is not None:
                                pk = _key_join(root, ploc.get("href", ""))
                                if pk:
                                    psha = (pcs.text or "").strip().lower() or None if pcs is not None and \
                                        pcs.get("type") == "sha256" else None
                                    rm.refs[pk] = Ref(int(psz.get("package", "0")), psha, k)
                                    pkgs.add(pk)
                            el.clear()
            except Exception as e:
                rm.errors.append(f"{k}: cannot parse primary: {e}")
