"""What Debian repository indexes say about other files: sizes and SHA-256 sums, via python-debian.

A Release/InRelease file vouches for the Packages/Sources/Translation indexes
of its suite (also under their by-hash names); a Packages index vouches for the
.deb files of its archive.  `pkgcache fetch` uses this to verify what it
downloads; which indexes it fetches with a Release is resolve/indexplan.py's choice.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from collections.abc import Iterator
from typing import IO

from debian import deb822

from pkgcache_suite.indexes.compression import IndexTooLarge, lines, open_decompressed
from pkgcache_suite.indexes.kinds import BY_HASH



MAX_RELEASE = 16 << 20  # a real InRelease is a few hundred KiB
SNIFF = 1 << 20  # where a Packages paragraph names its Filename, or a Sources one its Directory


@dataclass
class ReleaseList:
    """What a Release/InRelease file says: its components and architectures, and each index it vouches for."""

    components: list[str]
    architectures: list[str]
    by_hash: bool
    files: list[tuple[str, int, str]]  # (name relative to dists/<suite>/, size, sha256)


def parse_release(stream: IO[bytes]) -> ReleaseList:
    """The one Release parser (python-debian); ValueError when it lists no SHA-256 sums (not a Release file)."""
    kept: list[bytes] = []
    total = 0
    for line in lines(stream):
        total += len(line)
        if total > MAX_RELEASE:
            raise IndexTooLarge(f"a Release file of more than {MAX_RELEASE >> 20} MiB")
        kept.append(line)
    rel = deb822.Release(kept)
    files = [(e["name"], int(e["size"]), e["sha256"].lower()) for e in (rel.get("SHA256") or [])]
    if not files:
        raise ValueError("no SHA256 list (not a Release file?)")
    comps = str(rel.get("Components", "")).split() or sorted({n.split("/", 1)[0] for n, _, _ in files if "/" in n})
    return ReleaseList(comps, str(rel.get("Architectures", "")).split(),
                       str(rel.get("Acquire-By-Hash", "no")).lower() == "yes", files)


def by_hash_name(name: str, sha: str) -> str:
    """Where an index is also published under its digest (Acquire-By-Hash)."""
    return posixpath.join(posixpath.dirname(name), "by-hash", "SHA256", sha)


def index_entries(stream: IO[bytes]) -> Iterator[tuple[str, int, str | None]]:
    """(path relative to the archive root, size, sha256) of every file a Packages or Sources index lists.

    Packages indexes are scanned line by line for the three fields needed: on a
    full Debian archive that is several times faster than a deb822 parse, and
    the proxy runs it while package hits wait.  Sources paragraphs use
    python-debian.  Lines and paragraphs are bounded (indexes/compression.py).
    A file that is neither, or past the bounds, raises ValueError, so callers
    that must not delete on a broken index can tell.
    """
    bounded = lines(stream)
    head: list[bytes] = []
    held = 0
    for raw in bounded:  # the first paragraph tells which index this is; its first SNIFF bytes must
        head.append(raw)
        held += len(raw)
        if raw.startswith((b"Filename:", b"Directory:")) or held > SNIFF or (not raw.strip() and held > len(raw)):
            break
    first = b"".join(head)
    if not first.strip():
        return
    every = chain(head, bounded)
    if b"\nFilename:" in b"\n" + first:
        yield from _packages_entries(every)
    elif b"\nDirectory:" in b"\n" + first:
        for src in deb822.Sources.iter_paragraphs(every, use_apt_pkg=False):
            directory = src.get("Directory", "")
            for item in src.get("Checksums-Sha256") or []:
                yield posixpath.join(directory, item["name"]), int(item["size"]), item["sha256"].lower()
    else:
        raise ValueError("neither a Packages nor a Sources index")


def _packages_entries(stream: Iterator[bytes]) -> Iterator[tuple[str, int, str | None]]:
    filename: str | None = None
    size: int | None = None
    sha: str | None = None
    seen = False
    for raw in stream:
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

    def plain_name(self, url: str) -> str | None:
        """The plain URL of an index whose by-hash URL a Release at hand lists, else None: apt asks for
        the plain name when a mirror lacks the by-hash object, and checks it against the same digest."""
        m, name = BY_HASH.search(url), self.names.get(url)
        if m is None or name is None:
            return None
        tail = by_hash_name(name, m.group(1).lower())
        return url[: -len(tail)] + name if url.endswith(tail) else None

    def add_release(self, url: str, path: Path) -> ReleaseInfo:
        with open(path, "rb") as f:
            rel = parse_release(f)
        base = url.rsplit("/", 1)[0] + "/"
        entries = {name: (size, sha) for name, size, sha in rel.files}
        for name, (size, sha) in entries.items():
            for u in (base + name, base + by_hash_name(name, sha)):
                self.known[u] = (size, sha)
                self.names[u] = name
        info = ReleaseInfo(url, base, rel.components, rel.architectures, rel.by_hash, entries)
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
        with open_decompressed(path) as stream:
            listed = list(index_entries(stream))
        for rel, size, sha in listed:
            if sha:
                self.known[root + rel] = (size, sha)
                n += 1
        return n
