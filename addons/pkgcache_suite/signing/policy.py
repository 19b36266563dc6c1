"""Which signed indexes must verify, and against what.  Pure.

Signed indexes: a Debian suite's InRelease and an Alpine APKINDEX.tar.gz (signed inline), and the indexes
signed by a file beside them: a Debian Release (Release.gpg), an RPM repository's repomd.xml (repomd.xml.asc)
and a pacman database (<repo>.db.sig).  One is checked when a keyring vouches for it: its repository's own (`keyring=` in its
Remap line; `keyring=none`: none), else the admin's (pkgcache_keyrings: every signed index must verify
against it), else, for a Debian suite of the archives whose keys the system ships (an InRelease or Release
whose `Origin:` is Debian or Ubuntu, the new one's or the cached one's), the system's keyrings.  Once a
suite's cached Release is one those keys vouch for, a replacement that does not say so any more is not let
in: taking the `Origin:` line out is no way around the check.
"""

from __future__ import annotations

import re
from pathlib import Path

INRELEASE = re.compile(r"/dists/[^/]+(?:/[^/]+)?/InRelease$")
DEBIAN_RELEASE = re.compile(r"/dists/[^/]+(?:/[^/]+)?/Release$")
DETACHED = ((DEBIAN_RELEASE, ".gpg"), (re.compile(r"/repodata/repomd\.xml$"), ".asc"),
            (re.compile(r"/[^/]+\.db$"), ".sig"))  # the pacman database is <repo>.db (and its .tar.gz)
APKINDEX = re.compile(r"/APKINDEX\.tar\.gz$")  # its keys: Alpine's *.rsa.pub files in the keyring folders
MAX_SIGNATURE = 64 << 10  # a detached signature is a few hundred bytes
SYSTEM_ORIGINS = {"debian", "ubuntu"}
SYSTEM_KEYRINGS = Path("/usr/share/keyrings")
ORIGIN_HEAD = 64 << 10  # enough of a cached Release to read its Origin
MAX_SIGNED = 16 << 20  # the largest InRelease is a few hundred KiB: held whole to be checked, never larger
_ORIGIN = re.compile(rb"^Origin:[ \t]*(\S[^\r\n]*)", re.M)


def is_signed_index(key: str) -> bool:
    """An index signed inline (InRelease, APKINDEX) or by a file beside it."""
    return INRELEASE.search(key) is not None or is_apkindex(key) or detached_suffix(key) is not None


def is_apkindex(key: str) -> bool:
    return APKINDEX.search(key) is not None


def detached_suffix(key: str) -> str | None:
    """What a signed index's signature file adds to its name (".gpg", ".asc", ".sig"); None when inline."""
    return next((suffix for pattern, suffix in DETACHED if pattern.search(key)), None)


def signed_by_file(key: str) -> str | None:
    """The signed index a signature file is beside (Release for Release.gpg, ...); None for any other key."""
    for pattern, suffix in DETACHED:
        if key.endswith(suffix) and pattern.search(key[: -len(suffix)]):
            return key[: -len(suffix)]
    return None


def is_debian(key: str) -> bool:
    return INRELEASE.search(key) is not None or DEBIAN_RELEASE.search(key) is not None


def origin(head: bytes) -> str:
    """The archive an InRelease says it is (lower case; "" when it does not say)."""
    m = _ORIGIN.search(head[:ORIGIN_HEAD])
    return m.group(1).decode("utf-8", "replace").strip().lower() if m else ""


def keyring_dirs(configured: tuple[Path, ...], new_head: bytes, cached_head: bytes | None,
                 key: str = "/dists/x/InRelease", repo: tuple[Path, ...] | None = None) -> tuple[Path, ...]:
    """The keyring files and folders a new signed index at key must verify against; () when none vouches for
    it.  repo: its repository's own (None: not set, () for `keyring=none`); configured: pkgcache_keyrings."""
    if repo is not None:
        return repo
    if configured:
        return configured
    if is_debian(key) and (origin(new_head) in SYSTEM_ORIGINS
                           or (cached_head is not None and origin(cached_head) in SYSTEM_ORIGINS)):
        return (SYSTEM_KEYRINGS,)
    return ()


def may_need_check(key: str, configured: tuple[Path, ...], repo: tuple[Path, ...] | None) -> bool:
    """Whether a signed index must be held to be checked, before its body tells its Origin."""
    if repo is not None:
        return bool(repo)
    return bool(configured) or is_debian(key)
