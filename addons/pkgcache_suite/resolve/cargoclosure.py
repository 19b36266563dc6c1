"""What `pkgcache fetch` brings for a cargo index file an offline client missed: the registry's config.json,
the newest version's `.crate` (checked against the index's `cksum`) and, the same way, everything that
version depends on, so a fresh project needs one trip.

cargo asks for index files one crate at a time and stops at the first it cannot have, so the wanted list
names only the first crate of a chain; the rest is read from the index files fetched in the trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pkgcache_suite.indexes import cargo

MAX_CRATES = 2000  # a dependency tree larger than any real project's is cut here


@dataclass
class CargoClosure:
    dl: dict[str, str] = field(default_factory=dict)  # index root URL -> its config.json's download template
    waiting: dict[str, list[cargo.Version]] = field(default_factory=dict)  # root -> picks before config.json
    cksum: dict[str, str] = field(default_factory=dict)  # .crate URL -> SHA-256 its index lists
    seen: set[str] = field(default_factory=set)  # index file URLs taken in

    @staticmethod
    def root_of(url: str) -> str | None:
        """The index root URL (ending in /) of a URL shaped like a crate's index file."""
        parts = urlsplit(url)
        named = cargo.index_name(parts.path)
        if named is None or parts.query:
            return None
        return f"{parts.scheme}://{parts.netloc}{named[0]}/"

    def asked(self, url: str, headers: dict[str, str]) -> None:
        """A wanted URL: an index file when a client asked for it as cargo does (Accept: text/plain)."""
        accept = next((v for k, v in headers.items() if k.lower() == "accept"), "")
        if "text/plain" in accept and self.root_of(url) is not None:
            self.seen.add(url)

    def claims(self, url: str) -> bool:
        """Whether url is a cargo file this closure reads: an index file a client asked for or this closure
        named, or the config.json of a root it waits for."""
        if url.endswith("/config.json"):
            return url.removesuffix("config.json") in self.waiting
        return url in self.seen

    def learn(self, url: str, path: Path) -> list[str]:
        """Read a fetched index file or config.json; the URLs to fetch next."""
        if url.endswith("/config.json"):
            root = url.removesuffix("config.json")
            with open(path, "rb") as f:
                self.dl[root] = cargo.download_template(f)
            more: list[str] = []
            for pick in self.waiting.pop(root, []):
                more += self._expand(root, pick)
            return more
        at = self.root_of(url)
        if at is None:
            return []
        self.seen.add(url)
        with open(path, "rb") as f:
            newest = cargo.newest(list(cargo.versions(f)))
        return [] if newest is None else self._picked(at, newest)

    def _picked(self, root: str, pick: cargo.Version) -> list[str]:
        if root not in self.dl:
            first = root not in self.waiting
            self.waiting.setdefault(root, []).append(pick)
            return [root + "config.json"] if first else []
        return self._expand(root, pick)

    def _expand(self, root: str, pick: cargo.Version) -> list[str]:
        crate = cargo.download_url(self.dl[root], pick)
        if pick.cksum:
            self.cksum[crate] = pick.cksum
        more = [crate]
        for dep in pick.deps:
            index = root + cargo.index_path(dep.name)
            if dep.kind != "dev" and not dep.other_registry and index not in self.seen \
                    and len(self.seen) < MAX_CRATES:
                self.seen.add(index)
                more.append(index)
        return more

    def problem(self, url: str, sha256: str) -> str | None:
        """Why a fetched .crate is not the one its index lists (None: it is, or no index lists it)."""
        want = self.cksum.get(url)
        if want is None or want == sha256:
            return None
        return f"checksum mismatch: got sha256 {sha256}, the cargo index lists {want}"
