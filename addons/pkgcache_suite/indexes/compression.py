"""The one decompression helper: open an index in whatever compression it is in, judged by its first bytes.

By-hash names have no suffix, and pacman databases are often zstd under a
.db name, so the bytes decide, never the name.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path
from typing import IO, cast

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def open_decompressed(path: Path | str) -> IO[bytes]:
    """A binary stream of the decompressed content (xz, gzip, bzip2, zstd or plain)."""
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

        with open(path, "rb") as f:
            return io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(f.read()))
    return open(path, "rb")


def open_tar(path: Path | str) -> tarfile.TarFile:
    """A tar archive in any of those compressions (pacman .db, Alpine APKINDEX.tar.gz)."""
    return tarfile.open(fileobj=open_decompressed(path), mode="r:")
