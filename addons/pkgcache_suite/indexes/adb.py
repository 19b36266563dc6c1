"""apk-tools 3's own format (ADB): the v3 index's packages, and a v3 package's identity.

An ADB file is `ADB.`, a schema, then blocks (or `ADBd` and a raw deflate stream of such a file); the first
block holds the database: objects and arrays of 32-bit values whose top four bits are a type and the rest
an inline number or an offset into that block.  A v3 index lists each package's file size and its identity,
the SHA-256 of the package's own database block: what a downloaded package is checked against.  Read
within bounds; ValueError for anything else.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from typing import IO

MAX_INDEX = 256 << 20  # inflated; Alpine's largest index is a few MiB
MAX_PACKAGE_HEAD = 16 << 20  # a package's database block (its file list), inflated
SCHEMA_INDEX, SCHEMA_PACKAGE = 0x78646E69, 0x676B6370  # "indx", "pckg"
T_INT, T_INT32, T_INT64 = 0x1, 0x2, 0x3
T_BLOB8, T_BLOB16, T_BLOB32, T_ARRAY, T_OBJECT = 0x8, 0x9, 0xA, 0xD, 0xE
NDX_PACKAGES = 2
PI_NAME, PI_VERSION, PI_HASHES, PI_FILE_SIZE = 1, 2, 3, 0x0D
CHECK_PREFIX = "apk-adb-sha256:"


def is_adb(head: bytes) -> bool:
    return head[:4] in (b"ADB.", b"ADBd")


def _inflated(stream: IO[bytes], limit: int, whole: bool = True) -> bytes:
    """The file after its magic, inflated when it is deflated, at most limit bytes: more is refused, or, when
    only its head is wanted (whole=False), not read."""
    magic = stream.read(4)
    if magic == b"ADB.":
        data = stream.read(limit + 1)
    elif magic == b"ADBd":
        d, out = zlib.decompressobj(-15), bytearray()
        while len(out) <= limit + 4 and not d.eof:
            chunk = d.unconsumed_tail or stream.read(1 << 16)
            if not chunk:
                break
            try:
                out += d.decompress(chunk, limit + 5 - len(out))
            except zlib.error as e:
                raise ValueError(f"not an ADB file: {e}") from None
        if out[:4] != b"ADB.":  # what is deflated is the whole file, its magic again included
            raise ValueError("not an ADB file inside its deflate stream")
        data = bytes(out[4:])
    else:
        raise ValueError("not an ADB file")
    if len(data) > limit and whole:
        raise ValueError(f"an ADB file larger than {limit >> 20} MiB inflated")
    return data[:limit]


def inflated(data: bytes, limit: int = MAX_INDEX) -> bytes:
    """A whole ADB file (its magic included) after its magic, inflated; ValueError for anything else."""
    return _inflated(io.BytesIO(data), limit)


def blocks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each block of an ADB file after its magic (its schema, then 8-byte aligned blocks:
    0 the database, 1 a signature, 2 data)."""
    pos = 4
    while pos + 4 <= len(data):
        (type_size,) = struct.unpack_from("<I", data, pos)
        if type_size >> 30 == 3:  # a large block: its type, then its size in 64 bits
            if pos + 16 > len(data):
                raise ValueError("a cut ADB block")
            kind, raw, head = type_size & 0x3FFFFFFF, struct.unpack_from("<Q", data, pos + 8)[0], 16
        else:
            kind, raw, head = type_size >> 30, type_size & 0x3FFFFFFF, 4
        if raw < head or pos + raw > len(data):
            raise ValueError("a cut ADB block")
        yield kind, data[pos + head:pos + raw]
        pos += (raw + 7) & ~7


def _first_block(data: bytes, schema: int) -> bytes:
    """The payload of the database block that follows the schema."""
    if len(data) < 8 or struct.unpack_from("<I", data, 0)[0] != schema:
        raise ValueError("an ADB file of another kind")
    (type_size,) = struct.unpack_from("<I", data, 4)
    kind = type_size >> 30
    if kind == 3:  # a large block: its size follows in 64 bits
        if len(data) < 20:
            raise ValueError("a cut ADB block")
        kind, size, start = type_size & 0x3FFFFFFF, struct.unpack_from("<Q", data, 12)[0], 20
        size -= 16
    else:
        size, start = (type_size & 0x3FFFFFFF) - 4, 8
    if kind != 0 or size < 8 or start + size > len(data):
        raise ValueError("no whole ADB database block")
    return data[start:start + size]


class _Db:
    def __init__(self, payload: bytes) -> None:
        self.b = payload

    def _at(self, offset: int, n: int) -> bytes:
        if offset + n > len(self.b):
            raise ValueError("an ADB value points past its block")
        return self.b[offset:offset + n]

    def values(self, v: int) -> list[int]:
        """The entries of an object or array (index 0 is the count)."""
        if v >> 28 not in (T_ARRAY, T_OBJECT):
            return []
        off = v & 0x0FFFFFFF
        (num,) = struct.unpack("<I", self._at(off, 4))
        return list(struct.unpack(f"<{num}I", self._at(off, 4 * num))) if num else []

    def blob(self, v: int) -> bytes | None:
        t, off = v >> 28, v & 0x0FFFFFFF
        width = {T_BLOB8: 1, T_BLOB16: 2, T_BLOB32: 4}.get(t)
        if width is None:
            return None
        n = int.from_bytes(self._at(off, width), "little")
        return self._at(off + width, n)

    def number(self, v: int) -> int | None:
        t, off = v >> 28, v & 0x0FFFFFFF
        if t == T_INT:
            return off
        if t in (T_INT32, T_INT64):
            w = 4 if t == T_INT32 else 8
            return int.from_bytes(self._at(off, w), "little")
        return None

    @property
    def root(self) -> int:
        return int(struct.unpack_from("<I", self.b, 4)[0])


def index_entries(stream: IO[bytes]) -> Iterator[tuple[str, int, str]]:
    """(file name, size, identity as `apk-adb-sha256:HEX`) of every package a v3 index lists."""
    db = _Db(_first_block(_inflated(stream, MAX_INDEX), SCHEMA_INDEX))
    root = db.values(db.root)
    packages = db.values(root[NDX_PACKAGES]) if len(root) > NDX_PACKAGES else []
    for v in packages[1:]:
        pi = db.values(v)
        if len(pi) <= PI_FILE_SIZE:
            continue
        name, version, ident = db.blob(pi[PI_NAME]), db.blob(pi[PI_VERSION]), db.blob(pi[PI_HASHES])
        size = db.number(pi[PI_FILE_SIZE])
        if name and version and ident and len(ident) == 32 and size is not None:
            yield f"{name.decode('utf-8', 'replace')}-{version.decode('utf-8', 'replace')}.apk", size, \
                CHECK_PREFIX + ident.hex()


def package_identity(stream: IO[bytes]) -> str:
    """`apk-adb-sha256:HEX` of a v3 package: the SHA-256 of its database block."""
    head = _inflated(stream, MAX_PACKAGE_HEAD, whole=False)
    return CHECK_PREFIX + hashlib.sha256(_first_block(head, SCHEMA_PACKAGE)).hexdigest()
