"""Which signed indexes must verify, and against what.  Pure.

A Debian suite's InRelease is checked when a keyring vouches for it: the admin's (pkgcache_keyrings: every
signed index must verify against it), or, for the archives whose keys the system ships (an InRelease whose
`Origin:` is Debian or Ubuntu, the new one's or the cached one's), the system's keyrings.  Once a suite's
cached InRelease is one those keys vouch for, a replacement that does not say so any more is not let in:
taking the `Origin:` line out is no way around the check.
"""

from __future__ import annotations

import re
from pathlib import Path

INRELEASE = re.compile(r"/dists/[^/]+(?:/[^/]+)?/InRelease$")
SYSTEM_ORIGINS = {"debian", "ubuntu"}
SYSTEM_KEYRINGS = Path("/usr/share/keyrings")
MAX_SIGNED = 16 << 20  # the largest InRelease is a few hundred KiB: held whole to be checked, never larger
_ORIGIN = re.compile(rb"^Origin:[ \t]*(\S[^\r\n]*)", re.M)


def is_signed_index(key: str) -> bool:
    return INRELEASE.search(key) is not None


def origin(head: bytes) -> str:
    """The archive an InRelease says it is (lower case; "" when it does not say)."""
    m = _ORIGIN.search(head[:64 << 10])
    return m.group(1).decode("utf-8", "replace").strip().lower() if m else ""


def keyring_dirs(configured: tuple[Path, ...], new_head: bytes, cached_head: bytes | None) -> tuple[Path, ...]:
    """The folders of keyrings a new InRelease must verify against; () when none vouches for it."""
    if configured:
        return configured
    if origin(new_head) in SYSTEM_ORIGINS or (cached_head is not None and origin(cached_head) in SYSTEM_ORIGINS):
        return (SYSTEM_KEYRINGS,)
    return ()
