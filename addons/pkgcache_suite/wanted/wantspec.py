"""What an offline client says it wants: package names, its architectures, its apt index targets and its dpkg
status, checked and reduced to a plain record for the wanted list.

An offline machine states this once (``pkgcache want``, the page's form, or one
``curl`` line), so the connected side can fetch the indexes *and* the packages
with their dependencies in a single trip.  Everything here is client input:
every field is bounded and checked, and a bad one is refused with a reason
instead of being stored.  Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from debian import deb822

from pkgcache_suite.errors import PkgcacheError

MAX_PACKAGES = 500
MAX_TARGETS = 5000
MAX_TARGETS_BYTES = 4 << 20
MAX_STATUS_BYTES = 128 << 20  # a dpkg status, or an rpmdb.sqlite of a large install
MAX_REPOS = 100
FORMATS = ("deb", "rpm")
# name[:arch][=version | /release], as apt-get install accepts them
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,99}(:[a-z0-9][a-z0-9-]{0,30})?(=[A-Za-z0-9.+~:-]{1,100}|/[A-Za-z0-9.+~-]{1,60})?")
# what dnf install and zypper install take: name, name-version, name.arch
_RPM_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+~^:-]{0,200}")
_ARCH = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
_SUITE = re.compile(r"[A-Za-z0-9._~+-]+(/[A-Za-z0-9._~+-]+)*")


class WantError(PkgcacheError, ValueError):
    """The statement is refused as a whole; the message says which field and why."""


@dataclass(frozen=True)
class Source:
    """One apt source line as the client's apt expands it: a repository, a suite, its components and archs."""

    repo: str  # the repository URI, ending in "/"
    suite: str
    components: tuple[str, ...]
    archs: tuple[str, ...]

    @property
    def base(self) -> str:
        """The suite's folder, where InRelease and the indexes are."""
        return f"{self.repo}dists/{self.suite}/"


@dataclass(frozen=True)
class Target:
    """One index apt will fetch on `apt-get update` (a line of `apt-get indextargets`)."""

    base: str  # .../dists/<suite>/
    name: str  # relative to base, without compression: main/binary-amd64/Packages
    identifier: str  # Packages, Translations, Contents-deb, ...
    compressions: tuple[str, ...]  # apt's order of preference: xz, bz2, ..., uncompressed
    by_hash: bool


@dataclass
class WantRequest:
    packages: tuple[str, ...]
    archs: tuple[str, ...]  # the client's native architecture first
    sources: tuple[Source, ...] = ()
    targets: tuple[Target, ...] = ()
    status_sha256: str | None = None
    recommends: bool = True
    client: str = ""
    when: float = field(default_factory=time.time)
    format: str = "deb"  # deb: apt and dpkg; rpm: dnf or zypper, status_sha256 then names an rpmdb.sqlite
    repos: tuple[str, ...] = ()  # rpm: the repositories' base URLs (where repodata/ is)

    @property
    def id(self) -> str:
        """Stable for one statement, so sending it twice records it once."""
        text = "\n".join([self.format, " ".join(self.packages), " ".join(self.archs), self.status_sha256 or "",
                          str(self.recommends), *(f"{s.base} {' '.join(s.components)}" for s in self.sources),
                          *self.repos])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """In words, for the answer and the log: hello vim for amd64 from 2 sources, with dpkg status."""
        if self.format == "rpm":
            where = f"{len(self.repos)} repositor{'y' if len(self.repos) == 1 else 'ies'}"
            db = ", with rpmdb" if self.status_sha256 else ""
        else:
            where = f"{len(self.sources)} source{'' if len(self.sources) == 1 else 's'}"
            db = ", with dpkg status" if self.status_sha256 else ""
        return f"{' '.join(self.packages)} for {', '.join(self.archs)} from {where}{db}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "packages": list(self.packages), "archs": list(self.archs),
                "sources": [{"repo": s.repo, "suite": s.suite, "components": list(s.components),
                             "archs": list(s.archs)} for s in self.sources],
                "targets": [{"base": t.base, "name": t.name, "identifier": t.identifier,
                             "compressions": list(t.compressions), "by_hash": t.by_hash} for t in self.targets],
                "status": self.status_sha256, "recommends": self.recommends, "client": self.client,
                "when": self.when, "format": self.format, "repos": list(self.repos)}


def request_from_json(d: dict[str, Any]) -> WantRequest:
    """Read a recorded statement back (from a datastore, which is as untrusted as the client was)."""
    try:
        fmt = str(d.get("format", "deb"))
        if fmt not in FORMATS:
            raise WantError(f"unknown format {fmt[:20]!r}")
        packages = parse_packages(" ".join(d["packages"]), fmt)
        archs = parse_archs(" ".join(d["archs"]), fmt)
        repos = tuple(_repo_uri(str(r)) for r in d.get("repos", []))
        sources = tuple(Source(_repo_uri(s["repo"]), _suite(s["suite"]), _words(s["components"], _SUITE),
                               _words(s["archs"], _ARCH)) for s in d.get("sources", []))
        targets = tuple(_target(t["base"], t["name"], str(t["identifier"]), tuple(t["compressions"]),
                                bool(t["by_hash"])) for t in d.get("targets", []))
        status = d.get("status")
        if status is not None and not re.fullmatch(r"[0-9a-f]{64}", str(status)):
            raise WantError(f"bad status digest {status!r}")
        return WantRequest(packages, archs, sources, targets, status, bool(d.get("recommends", True)),
                           str(d.get("client", "")), float(d.get("when", 0)), fmt, repos)
    except (KeyError, TypeError, ValueError) as e:
        raise WantError(f"bad recorded request: {e}") from None


def parse_packages(text: str, fmt: str = "deb") -> tuple[str, ...]:
    names = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    pattern, kind = (_RPM_PACKAGE, "an RPM") if fmt == "rpm" else (_PACKAGE, "a Debian")
    if not names:
        raise WantError("packages: name at least one package")
    if len(names) > MAX_PACKAGES:
        raise WantError(f"packages: at most {MAX_PACKAGES} names at once")
    bad = [n for n in names if not pattern.fullmatch(n)]
    if bad:
        raise WantError(f"packages: not {kind} package name: {bad[0][:80]!r}")
    return tuple(dict.fromkeys(names))


def parse_archs(text: str, fmt: str = "deb") -> tuple[str, ...]:
    archs = tuple(dict.fromkeys(a for a in re.split(r"[\s,]+", text.strip()) if a))
    pattern = re.compile(r"[a-z0-9][a-z0-9_]{0,30}") if fmt == "rpm" else _ARCH  # x86_64, aarch64
    bad = [a for a in archs if not pattern.fullmatch(a) or a in ("all", "noarch")]
    if bad:
        raise WantError(f"arch: not an architecture: {bad[0][:40]!r}")
    return archs


def _words(values: Any, pattern: re.Pattern[str]) -> tuple[str, ...]:
    out = tuple(str(v) for v in values)
    if not all(pattern.fullmatch(v) for v in out):
        raise WantError(f"bad value in {list(out)[:5]!r}")
    return out


def _repo_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise WantError(f"targets: only http and https repositories without credentials can be fetched: {uri[:100]!r}")
    if any(c in uri for c in " \t\r\n\\\"'") or "/../" in parts.path + "/" or parts.query or parts.fragment:
        raise WantError(f"targets: not a plain repository URI: {uri[:100]!r}")
    return uri if uri.endswith("/") else uri + "/"


def _suite(suite: str) -> str:
    if not _SUITE.fullmatch(suite) or ".." in suite.split("/"):
        raise WantError(f"targets: not a suite name: {suite[:60]!r}")
    return suite


def _target(base: str, name: str, identifier: str, compressions: tuple[str, ...], by_hash: bool) -> Target:
    base = _repo_uri(base)
    if "/dists/" not in base:
        raise WantError(f"targets: flat repositories are not supported: {base[:100]!r}")
    segs = name.split("/")
    if not name or any(s in ("", ".", "..") for s in segs) or not all(re.fullmatch(r"[A-Za-z0-9._+~-]+", s)
                                                                       for s in segs):
        raise WantError(f"targets: not an index name: {name[:100]!r}")
    comps = tuple(c for c in compressions if re.fullmatch(r"[a-z0-9]+", c))
    return Target(base, name, identifier[:40], comps or ("xz", "bz2", "gz", "uncompressed"), by_hash)


def parse_targets(text: str) -> tuple[tuple[Target, ...], tuple[Source, ...], tuple[str, ...]]:
    """Read `apt-get indextargets --no-release-info` output: the indexes, the sources and the architectures
    (in apt's order, the native one first) the client uses."""
    if len(text) > MAX_TARGETS_BYTES:
        raise WantError(f"targets: more than {MAX_TARGETS_BYTES >> 20} MiB")
    targets: list[Target] = []
    sources: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    archs: list[str] = []
    for para in deb822.Deb822.iter_paragraphs(text.splitlines(keepends=True), use_apt_pkg=False):
        if "URI" not in para or "Base-URI" not in para:
            continue
        if len(targets) >= MAX_TARGETS:
            raise WantError(f"targets: more than {MAX_TARGETS} index targets")
        base, uri = para["Base-URI"], para["URI"]
        if not uri.startswith(base):
            raise WantError(f"targets: {uri[:100]!r} is not under its Base-URI")
        targets.append(_target(base, uri[len(base):], para.get("Identifier", ""),
                               tuple(para.get("CompressionTypes", "").split()),
                               para.get("By-Hash", "yes").lower() != "no"))
        if para.get("Identifier") != "Packages" or "Repo-URI" not in para or "Release" not in para:
            continue
        repo, suite = _repo_uri(para["Repo-URI"]), _suite(para["Release"])
        comps, src_archs = sources.setdefault((repo, suite), ([], []))
        comp, arch = para.get("Component", ""), para.get("Architecture", "")
        if comp and _SUITE.fullmatch(comp) and comp not in comps:
            comps.append(comp)
        if arch and _ARCH.fullmatch(arch) and arch not in src_archs:
            src_archs.append(arch)
        if arch and arch != "all" and _ARCH.fullmatch(arch) and arch not in archs:
            archs.append(arch)
    srcs = tuple(Source(repo, suite, tuple(c), tuple(a)) for (repo, suite), (c, a) in sources.items())
    return tuple(targets), srcs, tuple(archs)


def check_rpmdb(data: bytes) -> str:
    """The client's rpm database (rpmdb.sqlite), checked to be an SQLite file; returns its SHA-256."""
    if len(data) > MAX_STATUS_BYTES:
        raise WantError(f"rpmdb: more than {MAX_STATUS_BYTES >> 20} MiB")
    if not data.startswith(b"SQLite format 3\x00"):
        raise WantError("rpmdb: not an rpmdb.sqlite (send /var/lib/rpm/rpmdb.sqlite, or nothing)")
    return hashlib.sha256(data).hexdigest()


def check_status(data: bytes) -> str:
    """The client's dpkg status, checked to be one; returns its SHA-256 (the name it is stored under)."""
    if len(data) > MAX_STATUS_BYTES:
        raise WantError(f"status: more than {MAX_STATUS_BYTES >> 20} MiB")
    head = data[:65536]
    if data.strip() and not re.search(rb"^Package: ", head, re.M):
        raise WantError("status: not a dpkg status file (no Package: field)")
    if b"\x00" in head:
        raise WantError("status: binary data is not a dpkg status file")
    return hashlib.sha256(data).hexdigest()


def build_rpm_request(fields: dict[str, str], rpmdb: bytes | None, client: str,
                      seen: tuple[str, ...] = ()) -> WantRequest:
    """A dnf or zypper client's statement: packages, arch (required: uname -m), repos (their base URLs;
    default: the repositories the client was seen asking for), and optionally its rpmdb.sqlite."""
    packages = parse_packages(fields.get("packages", ""), "rpm")
    archs = parse_archs(fields.get("arch", ""), "rpm")
    if not archs:
        raise WantError("arch: say the client's architecture (uname -m)")
    words = [w for w in re.split(r"\s+", fields.get("repos", "").strip()) if w]
    if len(words) > MAX_REPOS:
        raise WantError(f"repos: at most {MAX_REPOS}")
    repos = tuple(dict.fromkeys(_repo_uri(w) for w in words)) or seen
    if not repos:
        raise WantError("repos: name the repositories' base URLs, or run the client's `dnf makecache` or "
                        "`zypper refresh` through this proxy first so they are seen")
    recommends = fields.get("recommends", "yes").strip().lower() not in ("no", "false", "0", "off")
    rpmdb_sha = check_rpmdb(rpmdb) if rpmdb else None
    return WantRequest(packages, archs, (), (), rpmdb_sha, recommends, client, format="rpm", repos=repos)


def build_request(fields: dict[str, str], status: bytes | None, client: str,
                  seen: tuple[Source, ...] = ()) -> WantRequest:
    """A statement from the form's fields: packages (required), arch, targets, recommends.  Without targets,
    the sources are the suites the client was seen asking for (seen), and so are the architectures."""
    packages = parse_packages(fields.get("packages", ""))
    targets, sources, seen_archs = parse_targets(fields.get("targets", ""))
    if not targets:
        sources = seen
        seen_archs = tuple(dict.fromkeys(a for s in seen for a in s.archs if a != "all"))
    archs = parse_archs(fields.get("arch", "")) or seen_archs
    if not archs:
        raise WantError("arch: say the client's architecture (dpkg --print-architecture), or send its targets")
    if not sources:
        raise WantError("targets: send the client's `apt-get indextargets --no-release-info`, or run its "
                        "`apt-get update` through this proxy first so its sources are seen")
    recommends = fields.get("recommends", "yes").strip().lower() not in ("no", "false", "0", "off")
    status_sha = check_status(status) if status is not None and status.strip() else None
    return WantRequest(packages, archs, sources, targets, status_sha, recommends, client)
