"""Alpine's APKINDEX: each package's name, version and size.  Its checksum is a SHA-1 of the control
segment only, not of the file, so no SHA-256 comes from here ("limited")."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator


def apkindex_entries(tar: tarfile.TarFile) -> Iterator[tuple[str, int]]:
    """(file name, size) of every package the index lists; KeyError when there is no APKINDEX member."""
    member = tar.extractfile("APKINDEX")
    text = member.read().decode("utf-8", "replace") if member else ""
    for para in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in para.splitlines() if ":" in line)
        if "P" in fields and "V" in fields and fields.get("S", "").isdigit():
            yield f"{fields['P']}-{fields['V']}.apk", int(fields["S"])
