"""Alpine's APKINDEX: each package's name, version, size and checksum.

The checksum (`C:Q1...`) is the SHA-1 of the package's control segment (the gzip stream holding
`.PKGINFO`, after an optional signature stream), not of the file: it is checked by reading that segment of
a downloaded package before it is stored, and no SHA-256 of the file comes from the index ("limited").
apk-tools 3's index (ADB, indexes/adb.py) gives a package's identity instead, checked the same way."""

from __future__ import annotations

import base64
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import IO, cast

from pkgcache_suite.indexes import adb
from pkgcache_suite.indexes.compression import lines, open_tar


CHECK_PREFIX = "apk-q1:"  # how a control-segment checksum is written where the cache keeps what an index lists
MAX_CONTROL = 4 << 20  # no package's signature and control segments come near this, packed
MAX_INFLATED = 16 << 20  # ... or unpacked: a segment that inflates further is no package's
_CHUNK = 64 << 10


def index_file_entries(path: str | Path) -> Iterator[tuple[str, int, str | None]]:
    """(file name, size, checksum) of every package an index file lists, in either format: v2's
    APKINDEX.tar.gz (a control segment's SHA-1) or apk-tools 3's ADB index (a package's identity)."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if adb.is_adb(head):
            yield from adb.index_entries(f)
            return
    with open_tar(path) as tar:
        yield from apkindex_entries(tar)


def apkindex_entries(tar: tarfile.TarFile) -> Iterator[tuple[str, int, str | None]]:
    """(file name, size, control checksum as `apk-q1:BASE64` or None) of every package the index lists, read line by line (bounded); KeyError when
    there is no APKINDEX member."""
    for member in tar:
        if member.name == "APKINDEX" and member.isfile():
            f = tar.extractfile(member)
            if f is not None:
                yield from _paragraphs(cast(IO[bytes], f))
            return
    raise KeyError("no APKINDEX in the archive")


def _paragraphs(stream: IO[bytes]) -> Iterator[tuple[str, int, str | None]]:
    fields: dict[str, str] = {}
    for raw in chain(lines(stream, max_paragraph=1 << 20), [b"\n"]):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line:
            if ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v
            continue
        if "P" in fields and "V" in fields and fields.get("S", "").isdigit():
            c = fields.get("C", "")
            yield f"{fields['P']}-{fields['V']}.apk", int(fields["S"]), CHECK_PREFIX + c[2:] if c[:2] == "Q1" else None
        fields = {}


def control_checksum(stream: IO[bytes]) -> str:
    """`apk-q1:BASE64` of a v2 package's control segment: the SHA-1 of the first gzip stream that is not a
    signature.  Reads only the leading segments; ValueError when the file is no v2 package."""
    read = 0
    while True:
        raw, first = _gzip_member(stream, MAX_CONTROL - read)
        read += len(raw)
        if not first.startswith(b".SIGN."):
            return CHECK_PREFIX + base64.b64encode(hashlib.sha1(raw).digest()).decode()


def _gzip_member(stream: IO[bytes], limit: int) -> tuple[bytes, bytes]:
    """(the raw bytes of the next gzip stream, the first bytes it inflates to); the stream is left just
    after it (a member's end is found by inflating it: gzip keeps no length)."""
    start = stream.tell()
    d = zlib.decompressobj(wbits=31)
    raw, head, inflated = bytearray(), b"", 0
    while not d.eof:
        chunk = stream.read(_CHUNK)
        if not chunk or len(raw) + len(chunk) > limit + _CHUNK:
            raise ValueError("not an Alpine v2 package: no whole control segment")
        try:
            out = d.decompress(chunk, 512) if len(head) < 512 else d.decompress(chunk)
        except zlib.error as e:
            raise ValueError(f"not an Alpine v2 package: {e}") from None
        head += out[:512 - len(head)]
        inflated += len(out)
        while not d.eof and d.unconsumed_tail:
            inflated += len(d.decompress(d.unconsumed_tail, 1 << 20))
            if inflated > MAX_INFLATED:
                raise ValueError("not an Alpine v2 package: a control segment that inflates without end")
        raw += chunk
    used = len(raw) - len(d.unused_data)
    stream.seek(start + used)
    return bytes(raw[:used]), head
