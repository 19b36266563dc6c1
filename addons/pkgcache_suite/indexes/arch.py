"""pacman's repo.db: a tarball of <pkg>/desc files naming %FILENAME%, %CSIZE% and %SHA256SUM%."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

from pkgcache_suite.indexes.compression import read_member


def db_entries(tar: tarfile.TarFile) -> Iterator[tuple[str, int, str | None]]:
    """(file name, size, SHA-256 or None) of every package the database lists."""
    for member in tar:
        if not member.isfile() or not member.name.endswith("/desc"):
            continue
        text = read_member(tar, member).decode("utf-8", "replace")
        fields: dict[str, str] = {}
        for block in text.split("\n\n"):
            lines = block.strip().splitlines()
            if len(lines) >= 2 and lines[0].startswith("%"):
                fields[lines[0].strip("%")] = lines[1].strip()
        name = fields.get("FILENAME")
        if name and fields.get("CSIZE", "").isdigit():
            yield name, int(fields["CSIZE"]), (fields.get("SHA256SUM") or "").lower() or None
