"""Which Debian suites, components and architectures, and which rpm-md repositories, clients were seen asking
for, and by whom.

Two uses: `pkgcache fetch` brings only the indexes clients use (not contrib,
non-free, other architectures and every translation), and a want statement
sent without the client's index targets takes its sources from the suites that
client asked for.  Index requests name their component and architecture even
under by-hash names, so the requests themselves tell.  Bounded, so a client
inventing suites cannot grow it without end.
"""

from __future__ import annotations

from typing import Any

from pkgcache_suite.resolve.indexplan import seen_index
from pkgcache_suite.resolve.rpmmeta import REPOMD, is_repomd
from pkgcache_suite.wanted.wantspec import Source

MAX_SUITES = 200
MAX_CLIENTS = 16
MAX_VALUES = 32


class SuiteUse:
    def __init__(self, data: Any = None, rpm: Any = None) -> None:
        self.suites: dict[str, dict[str, Any]] = {}
        self.rpm_repos: dict[str, list[str]] = {}  # an rpm-md repository's base URL -> clients that used it
        self.merge(data, rpm)

    def merge(self, data: Any, rpm: Any = None) -> None:
        """Add what another process (or an earlier run) saw; the data is read from disk, so checked."""
        for base, clients in (rpm.items() if isinstance(rpm, dict) else []):
            if isinstance(base, str) and base.startswith(("http://", "https://")) and isinstance(clients, list):
                for client in clients:
                    self._add_rpm(base, str(client))
        for base, u in (data.items() if isinstance(data, dict) else []):
            if not isinstance(base, str) or not isinstance(u, dict) or "/dists/" not in base:
                continue
            for comp in u.get("components", []) if isinstance(u.get("components"), list) else []:
                self._add(base, "components", str(comp))
            for arch in u.get("archs", []) if isinstance(u.get("archs"), list) else []:
                self._add(base, "archs", str(arch))
            for client in u.get("clients", []) if isinstance(u.get("clients"), list) else []:
                self._add(base, "clients", str(client))
            if u.get("translations") and base in self.suites:
                self.suites[base]["translations"] = True

    def _entry(self, base: str) -> dict[str, Any] | None:
        entry = self.suites.get(base)
        if entry is None and len(self.suites) < MAX_SUITES:
            entry = self.suites[base] = {"components": [], "archs": [], "clients": [], "translations": False}
        return entry

    def _add(self, base: str, field: str, value: str) -> bool:
        entry = self._entry(base)
        if entry is None or value in entry[field]:
            return False
        if len(entry[field]) >= (MAX_CLIENTS if field == "clients" else MAX_VALUES):
            return False
        entry[field].append(value)
        return True

    def _add_rpm(self, base: str, client: str) -> bool:
        clients = self.rpm_repos.get(base)
        if clients is None:
            if len(self.rpm_repos) >= MAX_SUITES:
                return False
            clients = self.rpm_repos[base] = []
        if not client or client in clients or len(clients) >= MAX_CLIENTS:
            return False
        clients.append(client)
        return True

    def note(self, url: str, client: str) -> bool:
        """One request under a suite's dists/ folder, or for an rpm-md repomd.xml; True when it taught
        something new."""
        url = url.split("?", 1)[0]
        if is_repomd(url):
            return self._add_rpm(url[: -len(REPOMD)], client)
        seen = seen_index(url)
        if seen is not None:
            base, comp, arch, translation = seen
            new = self._add(base, "components", comp)
            if arch is not None:
                new = self._add(base, "archs", arch) or new
            entry = self._entry(base)
            if translation and entry is not None and not entry["translations"]:
                entry["translations"] = new = True
            return (bool(client) and self._add(base, "clients", client)) or new
        name = url.rsplit("/", 1)[-1]
        if name in ("InRelease", "Release") and "/dists/" in url:
            return bool(client) and self._add(url[: -len(name)], "clients", client)
        return False

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {b: {**u, "components": list(u["components"]), "archs": list(u["archs"]),
                    "clients": list(u["clients"])} for b, u in self.suites.items()}

    def rpm_json(self) -> dict[str, list[str]]:
        return {b: list(c) for b, c in self.rpm_repos.items()}

    def rpm_repos_for(self, client: str) -> tuple[str, ...]:
        """The rpm-md repositories this client asked for (every one seen if it asked for none)."""
        return tuple(b for b, c in self.rpm_repos.items() if client in c) or tuple(self.rpm_repos)

    def sources_for(self, client: str) -> tuple[Source, ...]:
        """The suites this client asked for (all seen suites if it asked for none), as apt sources."""
        mine = [b for b, u in self.suites.items() if client in u["clients"]] or list(self.suites)
        out = []
        for base in mine:
            repo, suite = base.split("/dists/", 1)
            u = self.suites[base]
            out.append(Source(repo + "/", suite.rstrip("/"), tuple(u["components"]), tuple(u["archs"])))
        return tuple(out)
