"""Alpine's APKINDEX: each package's name, version and size.  Its checksum is a SHA-1 of the control
segment only, not of the file, so no SHA-256 comes from here ("limited")."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from itertools import chain
from typing import IO, cast

from pkgcache_suite.indexes.compression import lines


def apkindex_entries(tar: tarfile.TarFile) -> Iterator[tuple[str, int]]:
    """(file name, size) of every package the index lists, read line by line (bounded); KeyError when
    there is no APKINDEX member."""
    for member in tar:
        if member.name == "APKINDEX" and member.isfile():
            f = tar.extractfile(member)
            if f is not None:
                yield from _paragraphs(cast(IO[bytes], f))
            return
    raise KeyError("no APKINDEX in the archive")


def _paragraphs(stream: IO[bytes]) -> Iterator[tuple[str, int]]:
    fields: dict[str, str] = {}
    for raw in chain(lines(stream, max_paragraph=1 << 20), [b"\n"]):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line:
            if ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v
            continue
        if "P" in fields and "V" in fields and fields.get("S", "").isdigit():
            yield f"{fields['P']}-{fields['V']}.apk", int(fields["S"])
        fields = {}
