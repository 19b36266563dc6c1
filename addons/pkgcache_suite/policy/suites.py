"""Where a Debian suite's Release and the indexes it names sit in the cache's key space.  Pure.

A Release (or InRelease) at <base>InRelease names its indexes relative to <base>, the suite's folder under
dists/; each index is also published under <folder>/by-hash/SHA256/<its SHA-256>.  A suite may sit deeper
than dists/<suite>/ (dists/<suite>/updates/), so an index's possible suite folders are all of them.
"""

from __future__ import annotations

import posixpath

RELEASE_NAMES = ("InRelease", "Release")
NOT_INDEXES = ("InRelease", "Release", "Release.gpg")
BY_HASH = "/by-hash/"


def release_base(key: str) -> str | None:
    """The suite folder (ending in /) of a Release or InRelease key; None for any other key."""
    head, _, name = key.rpartition("/")
    if "/dists/" not in key or name not in RELEASE_NAMES:
        return None
    return head + "/"


def is_suite_index(key: str) -> bool:
    """A file a Release names by its plain name (Packages.xz, Translation-en, Contents-*, ...)."""
    return ("/dists/" in key and BY_HASH not in key and "?" not in key
            and key.rpartition("/")[2] not in NOT_INDEXES)


def bases(key: str) -> list[str]:
    """The suite folders an index key may belong to, the deepest first."""
    head, _, rest = key.partition("/dists/")
    parts = rest.split("/")[:-1]
    return [f"{head}/dists/{'/'.join(parts[:n])}/" for n in range(len(parts), 0, -1)]


def by_hash(key_or_url: str, sha256: str) -> str:
    """The by-hash name of an index (a key or a URL) with these bytes."""
    return posixpath.join(posixpath.dirname(key_or_url), "by-hash", "SHA256", sha256)
