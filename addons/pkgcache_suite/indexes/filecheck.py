"""Digests an index gives that are not the SHA-256 of the whole file, checked against a file on disk."""

from __future__ import annotations

import hashlib

from pkgcache_suite.indexes import alpine

SHA1_PREFIX = "sha1:"  # a .sha1 file beside a Maven artifact


def check_file(path: str, check: str) -> str | None:
    """Why a file does not have the digest `check` names (None: it has it)."""
    if check.startswith(alpine.CHECK_PREFIX):
        try:
            with open(path, "rb") as f:
                got = alpine.control_checksum(f)
        except ValueError as e:
            return str(e)
        return None if got == check else f"control checksum mismatch: package has {got}, the index lists {check}"
    if check.startswith(SHA1_PREFIX):
        h = hashlib.sha1()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        got = SHA1_PREFIX + h.hexdigest()
        return None if got == check else f"SHA-1 mismatch: file has {got[5:]}, its .sha1 says {check[5:]}"
    return f"unknown kind of checksum {check.split(':', 1)[0]!r}"
