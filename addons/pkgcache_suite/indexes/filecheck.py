"""Digests an index gives that are not the SHA-256 of the whole file, checked against a file on disk."""

from __future__ import annotations

import hashlib
import os
import struct
from typing import IO

from pkgcache_suite.indexes import adb, alpine

SHA1_PREFIX = "sha1:"  # a .sha1 file beside a Maven artifact, an npm document's shasum
WHOLE_FILE = ("sha1", "sha512")  # digests of the whole file, written ALG:HEX (npm's integrity is sha512)


def whole_file_alg(check: str) -> str | None:
    """The hashlib name of a whole-file digest `check` names (None for one that reads part of the file)."""
    alg = check.partition(":")[0]
    return alg if alg in WHOLE_FILE else None


def check_file(path: str, check: str) -> str | None:
    """Why a file does not have the digest `check` names (None: it has it)."""
    with open(path, "rb") as f:
        return check_stream(f, check)


def check_fd(fd: int, check: str) -> str | None:
    """The same for an open file (a datastore's, opened without following links), read from its start and
    left at its start for whoever reads it next."""
    with os.fdopen(os.dup(fd), "rb") as f:
        f.seek(0)
        why = check_stream(f, check)
    os.lseek(fd, 0, os.SEEK_SET)
    return why


def check_stream(f: IO[bytes], check: str) -> str | None:
    if check.startswith(adb.CHECK_PREFIX):
        try:
            got = adb.package_identity(f)
        except (ValueError, struct.error) as e:
            return f"not an apk-tools 3 package: {e}"
        return None if got == check else f"package identity mismatch: package has {got}, the index lists {check}"
    if check.startswith(alpine.CHECK_PREFIX):
        try:
            got = alpine.control_checksum(f)
        except ValueError as e:
            return str(e)
        return None if got == check else f"control checksum mismatch: package has {got}, the index lists {check}"
    if alg := whole_file_alg(check):
        h = hashlib.new(alg)
        while chunk := f.read(1 << 20):
            h.update(chunk)
        return compare(alg, h.hexdigest(), check)
    return f"unknown kind of checksum {check.split(':', 1)[0]!r}"


def compare(alg: str, got: str, check: str) -> str | None:
    """Why a whole-file digest is not the one `check` names."""
    want = check.partition(":")[2]
    return None if got == want else f"{alg.upper().replace('SHA', 'SHA-')} mismatch: file has {got}, the index lists {want}"
