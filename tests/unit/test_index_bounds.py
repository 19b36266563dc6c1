"""Indexes as hostile input: every parser streams with bounded memory and refuses what is past its bounds.

Each case is a small file that inflates to much more (one endless line, one endless paragraph, one endless
XML tag or text node, a huge tar member): the parser either lists what it should or raises ValueError, and
what it allocated on the way stays far below the inflated size.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from pkgcache_suite.indexes.alpine import apkindex_entries
from pkgcache_suite.indexes.arch import db_entries
from pkgcache_suite.indexes.compression import IndexTooLarge, open_decompressed, open_tar
from pkgcache_suite.indexes.debian import index_entries, parse_release
from pkgcache_suite.indexes.rpm import primary_entries

MIB = 1 << 20
PEAK = 24 * MIB  # what any parse may allocate, whatever the input inflates to


def _gz(path: Path, *parts: tuple[bytes, int]) -> Path:
    """A gzip file of each (piece, times) in turn, written without holding the inflated whole."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        for piece, times in parts:
            block = piece * max(1, MIB // max(len(piece), 1))
            n = len(piece) * times
            while n > 0:
                chunk = block[:n]
                f.write(z.compress(chunk))
                n -= len(chunk)
        f.write(z.flush())
    return path


def _tar_gz(path: Path, name: str, size: int, filler: bytes) -> Path:
    class Endless(io.RawIOBase):
        left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), self.left)
            at = (size - self.left) % len(filler)  # the pattern runs on across reads
            b[:n] = (filler * (n // len(filler) + 2))[at:at + n]
            self.left -= n
            return n

    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BufferedReader(Endless()))
    return path


def _packages(path: Path) -> int:
    with open_decompressed(path) as s:
        return sum(1 for _ in index_entries(s))


def _primary(path: Path) -> int:
    with open_decompressed(path) as s:
        return sum(1 for _ in primary_entries(s))


def _apk(path: Path) -> int:
    with open_tar(path) as tar:
        return sum(1 for _ in apkindex_entries(tar))


def _pacman(path: Path) -> int:
    with open_tar(path) as tar:
        return sum(1 for _ in db_entries(tar))


def _release(path: Path) -> int:
    with open_decompressed(path) as s:
        return len(parse_release(s).files)


GOOD = b"Package: a\nFilename: pool/a.deb\nSize: 3\nSHA256: " + b"0" * 64 + b"\n\n"
PRIMARY_HEAD = (b'<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" '
                b'xmlns:rpm="http://linux.duke.edu/metadata/rpm">')
PKG = (b'<package type="rpm"><location href="a.rpm"/><size package="3"/>'
       b'<checksum type="sha256">' + b"1" * 64 + b"</checksum></package>")

CASES: list[tuple[str, Callable[[Path], Path], Callable[[Path], int], int | None]] = [
    ("packages-one-endless-line", lambda p: _gz(p, (b"Package: x", 1), (b"a", 64 * MIB)), _packages, None),
    ("packages-endless-first-paragraph", lambda p: _gz(p, (b"Description: x\n", 2 * MIB)), _packages, None),
    ("packages-endless-later-paragraph", lambda p: _gz(p, (GOOD, 2), (b"Depends: x\n", 2 * MIB)), _packages, None),
    ("packages-many-good-paragraphs", lambda p: _gz(p, (GOOD, 200_000)), _packages, 200_000),
    ("sources-endless-line", lambda p: _gz(p, (b"Package: s\nDirectory: pool/s\nX: ", 1), (b"b", 64 * MIB)),
     _packages, None),
    ("release-endless-line", lambda p: _gz(p, (b"Origin: x\nSHA256:\n ", 1), (b"c", 64 * MIB)), _release, None),
    ("primary-endless-text", lambda p: _gz(p, (PRIMARY_HEAD + PKG + b"<package><description>", 1),
                                           (b"d", 64 * MIB), (b"</description></package></metadata>", 1)),
     _primary, 1),
    ("primary-endless-attribute", lambda p: _gz(p, (PRIMARY_HEAD + b'<package x="', 1), (b"e", 64 * MIB)),
     _primary, None),
    ("primary-many-packages", lambda p: _gz(p, (PRIMARY_HEAD, 1), (PKG, 100_000), (b"</metadata>", 1)),
     _primary, 100_000),
    ("apkindex-endless", lambda p: _tar_gz(p, "APKINDEX", 64 * MIB, b"f"), _apk, None),
    ("apkindex-many", lambda p: _tar_gz(p, "APKINDEX", 17 * 200_000, b"P:p\nV:1\nS:3\nX:y\n\n"), _apk, 200_000),
    ("pacman-huge-desc", lambda p: _tar_gz(p, "p-1/desc", 64 * MIB, b"%FILENAME%\n"), _pacman, None),
]


@pytest.mark.parametrize("name,build,parse,listed", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_index_costs_bounded_memory(tmp_path: Path, name: str, build, parse, listed) -> None:
    path = build(tmp_path / name)
    tracemalloc.start()
    try:
        try:
            got: int | None = parse(path)
        except ValueError as e:  # IndexTooLarge, or not an index at all: refused
            got = None
            assert listed is None, (name, e)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if listed is not None:
        assert got == listed, name
    assert peak < PEAK, f"{name}: {peak / MIB:.0f} MiB at peak"


def test_an_index_that_inflates_past_its_bound_is_refused(tmp_path: Path) -> None:
    path = _gz(tmp_path / "Packages.gz", (GOOD, 50_000))
    with pytest.raises(IndexTooLarge, match="inflates to more than"), open_decompressed(path, limit=MIB) as s:
        list(index_entries(s))
