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
from collections.abc import Iterator
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


def index_entries(path: Path) -> Iterator[tuple[str, int, str | None]]:
    """(path relative to the archive root, size, sha256) of every file a Packages or Sources index lists.

    Packages indexes are scanned line by line for the three fields needed: on a
    full Debian archive that is several times faster than a deb822 parse, and
    the proxy runs it while package hits wait.  Sources paragraphs use
    python-debian.  A file that is neither raises ValueError, so callers that
    must not delete on a broken index can tell.
    """
    with open_index(path) as f:
        first = b""
        for raw in f:
            if raw.strip() == b"" and first:
                break
            first += raw
    if not first.strip():
        return
    if b"\nFilename:" in b"\n" + first:
        yield from _packages_entries(path)
    elif b"\nDirectory:" in b"\n" + first:
        with open_index(path) as f:
            for src in deb822.Sources.iter_paragraphs(f, use_apt_pkg=False):
                directory = src.get("Directory", "")
                for item in src.get("Checksums-Sha256") or []:
                    yield posixpath.join(directory, item["name"]), int(item["size"]), item["sha256"].lower()
    else:
        raise ValueError("neither a Packages nor a Sources index")


def _packages_entries(path: Path) -> Iterator[tuple[str, int, str | None]]:
    filename: str | None = None
    size: int | None = None
    sha: str | None = None
    seen = False
    with open_index(path) as f:
        for raw in f:
            if raw.strip() == b"":
                if seen:
                    if filename is None or size is None:
                        raise ValueError("a Packages paragraph without Filename or Size")
                    yield filename, size, sha
                filename, size, sha, seen = None, None, None, False
                continue
            seen = True
            if raw.startswith(b"Filename:"):
                filename = raw[9:].strip().decode("utf-8", "replace")
            elif raw.startswith(b"Size:"):
                size = int(raw[5:].strip())
            elif raw.startswith(b"SHA256:"):
                sha = raw[7:].strip().decode("ascii", "replace").lower()
    if seen:
        if filename is None or size is None:
            raise ValueError("a Packages paragraph without Filename or Size")
        yield filename, size, sha


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
        for rel, size, sha in index_entries(path):
            if sha:
                self.known[root + rel] = (size, sha)
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
