"""What Debian repository indexes say about other files: sizes and SHA-256 sums, via python-debian.

A Release/InRelease file vouches for the Packages/Sources/Translation indexes
of its suite (also under their by-hash names); a Packages index vouches for the
.deb files of its archive.  `pkgcache fetch` uses this to verify what it
downloads and to fetch, in the same trip, the indexes a fetched InRelease names.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from debian import deb822

_COMPRESSIONS = (".xz", ".gz", ".bz2", "")  # the order apt prefers, plain last


def open_index(path: Path) -> IO[bytes]:
    """Open an index in whatever compression it is in, judged by its first bytes (by-hash names have no suffix)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(IO[bytes], lzma.open(path))
    if magic.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.open(path))
    if magic.startswith(b"BZh"):
        return cast(IO[bytes], bz2.open(path))
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        import zstandard

        return io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()))
    return open(path, "rb")


def is_release_url(url: str) -> bool:
    return "/dists/" in url and url.rsplit("/", 1)[-1] in ("InRelease", "Release")


@dataclass
class ReleaseInfo:
    url: str
    base: str  # .../dists/<suite>/
    components: list[str]
    architectures: list[str]
    by_hash: bool
    entries: dict[str, tuple[int, str]]  # name relative to base -> (size, sha256)


@dataclass
class DebianIndex:
    known: dict[str, tuple[int, str]] = field(default_factory=dict)  # url -> (size, sha256)
    names: dict[str, str] = field(default_factory=dict)  # url -> name relative to its suite (for by-hash URLs)
    releases: dict[str, ReleaseInfo] = field(default_factory=dict)

    def expected(self, url: str) -> tuple[int, str] | None:
        return self.known.get(url)

    def add_release(self, url: str, path: Path) -> ReleaseInfo:
        with open(path, "rb") as f:
            rel = deb822.Release(f)
        base = url.rsplit("/", 1)[0] + "/"
        entries: dict[str, tuple[int, str]] = {}
        for e in rel.get("SHA256", []) or []:
            entries[e["name"]] = (int(e["size"]), e["sha256"].lower())
        by_hash = str(rel.get("Acquire-By-Hash", "no")).lower() == "yes"
        for name, (size, sha) in entries.items():
            self.known[base + name] = (size, sha)
            self.names[base + name] = name
            hashed = base + posixpath.join(posixpath.dirname(name), "by-hash", "SHA256", sha)
            self.known[hashed] = (size, sha)
            self.names[hashed] = name
        comps = str(rel.get("Components", "")).split()
        if not comps:
            comps = sorted({n.split("/", 1)[0] for n in entries if "/" in n})
        info = ReleaseInfo(url, base, comps, str(rel.get("Architectures", "")).split(), by_hash, entries)
        self.releases[url] = info
        return info

    def is_packages(self, url: str) -> bool:
        name = self.names.get(url, url.rsplit("/", 1)[-1])
        return posixpath.basename(name).split(".")[0] == "Packages"

    def add_packages(self, url: str, path: Path) -> int:
        if "/dists/" not in url:
            return 0
        root = url.split("/dists/", 1)[0] + "/"
        n = 0
        with open_index(path) as f:
            for para in deb822.Packages.iter_paragraphs(f, use_apt_pkg=False):
                fn, size, sha = para.get("Filename"), para.get("Size"), para.get("SHA256")
                if fn and size and sha:
                    self.known[root + fn] = (int(size), sha.lower())
                    n += 1
        return n

    def indexes_for(self, info: ReleaseInfo, archs: list[str], languages: tuple[str, ...] = ("en",)) -> list[str]:
        """The index URLs apt will ask for next, given the clients' architectures: one compression each."""
        wanted_archs = list(archs)
        if "all" in info.architectures and "all" not in wanted_archs:
            wanted_archs.append("all")
        stems = [f"{c}/binary-{a}/Packages" for c in info.components for a in wanted_archs]
        stems += [f"{c}/i18n/Translation-{lang}" for c in info.components for lang in languages]
        urls = []
        for stem in stems:
            for ext in _COMPRESSIONS:
                name = stem + ext
                if name in info.entries:
                    size, sha = info.entries[name]
                    if info.by_hash:
                        urls.append(info.base + posixpath.join(posixpath.dirname(name), "by-hash", "SHA256", sha))
                    else:
                        urls.append(info.base + name)
                    break
        return urls
