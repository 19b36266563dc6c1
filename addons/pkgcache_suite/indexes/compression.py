"""The one decompression helper: open an index in whatever compression it is in, judged by its first bytes,
and read it within bounds.

By-hash names have no suffix, and pacman databases are often zstd under a
.db name, so the bytes decide, never the name.  An index is input from a
mirror, or from a stick: a megabyte that inflates to a gigabyte, or one line
that never ends, must cost neither memory nor minutes.  So every index is read
as a stream that stops at MAX_INFLATED bytes, in lines of at most MAX_LINE
and paragraphs of at most MAX_PARAGRAPH, and beyond them it is refused
(IndexTooLarge, a ValueError: callers treat it as a broken index).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_INFLATED = 1 << 30  # a full suite's Packages is about 100 MiB, a large primary.xml a few hundred
MAX_LINE = 1 << 20
MAX_PARAGRAPH = 4 << 20  # a real paragraph (a Sources one with a long Package-List) is some KiB
MAX_MEMBER = 16 << 20  # one member of an index tarball (APKINDEX, a pacman desc), read whole


class IndexTooLarge(ValueError):
    """An index past the bounds this reads: refused, with what was too large."""


class _Bounded(io.RawIOBase):
    """A decompressed stream that ends in IndexTooLarge past its limit, read in the caller's chunks."""

    def __init__(self, inner: IO[bytes], limit: int, name: str) -> None:
        self.inner, self.limit, self.name, self.total = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.inner.read(min(len(buf), 1 << 20))
        self.total += len(data)
        if self.total > self.limit:
            raise IndexTooLarge(f"{self.name} inflates to more than {self.limit >> 20} MiB")
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def _inner(path: Path | str) -> IO[bytes]:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(IO[bytes], lzma.open(path))
    if magic.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.open(path))
    if magic.startswith(b"BZh"):
        return cast(IO[bytes], bz2.open(path))
    if magic.startswith(ZSTD_MAGIC):
        import zstandard

        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def open_decompressed(path: Path | str, limit: int = MAX_INFLATED) -> IO[bytes]:
    """A binary stream of the decompressed content (xz, gzip, bzip2, zstd or plain), at most limit bytes;
    read on or lines() past that raise IndexTooLarge.  Not seekable."""
    return io.BufferedReader(_Bounded(_inner(path), limit, Path(path).name), 1 << 16)


def lines(stream: IO[bytes], max_line: int = MAX_LINE, max_paragraph: int = MAX_PARAGRAPH) -> Iterator[bytes]:
    """The stream's lines, each at most max_line bytes and each paragraph (lines up to a blank one) at most
    max_paragraph: what a line-by-line parser holds stays bounded."""
    para = 0
    while line := stream.readline(max_line + 1):
        if len(line) > max_line:
            raise IndexTooLarge(f"a line longer than {max_line >> 10} KiB")
        para = 0 if not line.strip() else para + len(line)
        if para > max_paragraph:
            raise IndexTooLarge(f"a paragraph longer than {max_paragraph >> 20} MiB")
        yield line


def open_tar(path: Path | str) -> tarfile.TarFile:
    """A tar archive in any of those compressions (pacman .db, Alpine APKINDEX.tar.gz), read as a stream:
    its members in order, each once."""
    return tarfile.open(fileobj=open_decompressed(path), mode="r|")


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """One member's bytes, refused past MAX_MEMBER (its header says its size before anything is read)."""
    if member.size > MAX_MEMBER:
        raise IndexTooLarge(f"{member.name} is {member.size >> 20} MiB, more than {MAX_MEMBER >> 20} MiB")
    f = tar.extractfile(member)
    return f.read(MAX_MEMBER + 1) if f else b""
