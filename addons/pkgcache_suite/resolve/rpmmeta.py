"""What `pkgcache fetch` learns from rpm-md metadata: repomd.xml names (and vouches for) the repodata files a
dnf or zypper client downloads next; primary.xml vouches for the packages.

Fetched in the same trip as the repomd.xml, so a fresh dnf or zypper client
needs no extra trip for its metadata; changelogs (``other``) and the sqlite and
zchunk copies are left out, as the clients do not read them by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pkgcache_suite.indexes.compression import open_decompressed
from pkgcache_suite.indexes.rpm import primary_entries, repomd_entries
from pkgcache_suite.resolve.resolution import plain_relative

REPOMD = "repodata/repomd.xml"
SKIPPED_TYPES = ("other",)
# what zypper (and dnf with repo_gpgcheck) asks next to repomd.xml: fetched in the same trip, so the offline
# proxy knows the ones a repository does not have, instead of recording them as wanted again
PROBES = ("repodata/repomd.xml.asc", "repodata/repomd.xml.key", "media.1/media", "content")


def is_repomd(url: str) -> bool:
    return url.endswith("/" + REPOMD)


def wanted_type(kind: str, href: str) -> bool:
    """Metadata a client downloads: not changelogs, not the _db/_zck alternatives of what it reads as XML."""
    return kind not in SKIPPED_TYPES and not kind.endswith(("_db", "_zck")) and not href.endswith(".zck")


@dataclass
class RpmRepos:
    """Per repository base URL: the repodata files its repomd.xml lists, by type."""

    known: dict[str, tuple[int, str]]  # shared with the Debian table: url -> (size, sha256)
    listed: dict[str, dict[str, str]] = field(default_factory=dict)  # base -> {href: type}

    def probes(self, url: str) -> list[str]:
        """The files a client probes for beside a repository's repomd.xml."""
        return [url[: -len(REPOMD)] + p for p in PROBES]

    def add_repomd(self, url: str, path: Path) -> list[str]:
        """Learn a fetched repomd.xml; return the repodata URLs to fetch with it."""
        base = url[: -len(REPOMD)]
        with open(path, "rb") as f:
            entries = list(repomd_entries(f))
        self.listed[base] = {e.href: e.type for e in entries}
        more = []
        for e in entries:
            if e.size is not None and e.sha256:
                self.known[base + e.href] = (e.size, e.sha256)
            if wanted_type(e.type, e.href):
                more.append(base + e.href)
        return more

    def is_primary(self, url: str) -> bool:
        return any(url.startswith(b) and t.get(url[len(b):]) == "primary" for b, t in self.listed.items())

    def add_primary(self, url: str, path: Path) -> None:
        base = next(b for b in self.listed if url.startswith(b))
        with open_decompressed(path) as stream:
            for e in primary_entries(stream):
                if e.size is not None and e.sha256:
                    self.known[base + e.href] = (e.size, e.sha256)

    def fetched_tree(self, base: str, files: dict[str, Any], file_path: Callable[[str], Path]) -> dict[str, Path]:
        """The repository's repomd.xml and fetched metadata, as paths under its base: what dnf reads."""
        tree: dict[str, Path] = {}
        for href in [REPOMD, *self.listed.get(base, {})]:
            if base + href in files and plain_relative(href):
                tree[href] = file_path(base + href)
        return tree
