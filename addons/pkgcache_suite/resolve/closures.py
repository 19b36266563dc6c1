"""The ecosystems whose clients stop at the first file they cannot have (cargo, Go, Maven, container
registries): what a fetched
file of theirs names, for `pkgcache fetch` to bring in the same trip."""

from __future__ import annotations

from pathlib import Path

from pkgcache_suite.resolve import gomodules, mavenclosure, ociclosure
from pkgcache_suite.resolve.cargoclosure import CargoClosure


class Closures:
    def __init__(self) -> None:
        self.cargo = CargoClosure()

    def asked(self, url: str, headers: dict[str, str]) -> None:
        """A wanted URL and how its client asked for it (cargo's index files are told by their Accept)."""
        self.cargo.asked(url, headers)

    def learn(self, url: str, path: Path) -> list[str]:
        """The URLs a fetched file names; [] for a file of none of these ecosystems."""
        if self.cargo.claims(url):
            return self.cargo.learn(url, path)
        if gomodules.is_version_file(url):
            return gomodules.learn(url, path)
        if mavenclosure.claims(url):
            return mavenclosure.learn(url, path)
        if ociclosure.claims(url):
            return ociclosure.learn(url, path)
        return []

    @staticmethod
    def headers_for(url: str) -> dict[str, str]:
        """How a URL one of these named is asked for (a registry's manifests need their Accept)."""
        return ociclosure.headers_for(url)

    def problem(self, url: str, sha256: str) -> str | None:
        """Why a fetched file is not what the index that named it lists (None: it is, or none did)."""
        return self.cargo.problem(url, sha256) or ociclosure.problem(url, sha256)
