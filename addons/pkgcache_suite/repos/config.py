"""Repositories, remapping and access rules, read from apt-cacher-ng style config files.

An admin switching from apt-cacher-ng keeps their acng.conf: the directives
pkgcache supports are read with their apt-cacher-ng meaning, and every other
line is reported with its file and line number at start, never silently
ignored.  Supported::

    Remap-NAME: MERGE... ; TARGET... ; keyfile=REGEX proxy=URL keyring=PATH[,PATH]|none
    PassThroughPattern: REGEX      CONNECT targets (host:port) allowed through the tunnel
    ForceManaged: 0|1              only remapped repositories are reachable
    AllowUserPorts: PORT...        ports a client may name (0 = any)
    Offlinemode: 0|1               never contact upstream
    DontCache: REGEX               URLs never stored
    AdminAuth: USER:PASSWORD       protects the report page's state-changing actions

MERGE and TARGET entries are URLs (``http://mirror.example/debian``), bare
``host/path`` prefixes, ``/path`` prefixes (for mirror-style URLs) or
``file:NAME`` lists (one URL per line, or RFC 822 ``Site:``/``Archive-http:``
paragraphs as in Debian's mirror lists; globs and .gz/.xz allowed; relative to
the config file's folder).
"""

from __future__ import annotations

from pkgcache_suite.errors import PkgcacheError

import glob
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pkgcache_suite.indexes.compression import open_decompressed

BAD_TARGET_SECONDS = 60.0

IGNORED_HARMLESS = {
    # apt-cacher-ng settings whose job mitmproxy or pkgcache options do; reported as such, not as errors
    "cachedir": "use --set pkgcache_dir=...",
    "port": "use mitmproxy's --listen-port",
    "bindaddress": "use mitmproxy's --listen-host",
    "logdir": "mitmproxy logs to its console",
    "reportpage": "the report is at http://pkgcache/",
    "exthreshold": "see the expire command",
    "foreground": "mitmdump runs in the foreground",
    "pidfile": "run under a service manager",
    "socketpath": "not supported",
    "verboselog": "use mitmproxy's --set termlog_verbosity",
    "unbufferlogs": "not applicable",
}


class ConfigError(PkgcacheError, ValueError):
    pass


@dataclass
class Repository:
    name: str
    merge: list[str]  # scheme-less prefixes "host[:port]/path" (lowercase host) or "/path"
    targets: list[str]  # "scheme://host[:port]/path" without trailing slash
    keyfiles: list[re.Pattern[str]] = field(default_factory=list)
    proxy: str | None = None
    keyrings: tuple[Path, ...] | None = None  # its signed indexes verify against these (None: not set; (): none)
    origin: str = ""


@dataclass
class RepoConfig:
    repos: list[Repository] = field(default_factory=list)
    passthrough: list[re.Pattern[str]] = field(default_factory=list)
    force_managed: bool | None = None
    allow_ports: set[int] | None = None  # None: not set here; {0}: any
    offline: bool | None = None
    dont_cache: list[re.Pattern[str]] = field(default_factory=list)
    admin_auth: str | None = None
    problems: list[str] = field(default_factory=list)  # "file:line: message"
    notes: list[str] = field(default_factory=list)

    def match(self, host: str, port: int, scheme: str, path: str) -> tuple[Repository, str] | None:
        """The repository whose merge list covers this URL, and the path below the matching prefix."""
        default = 443 if scheme == "https" else 80
        hostport = host.lower() + ("" if port == default else f":{port}")
        full = hostport + path
        for repo in self.repos:
            for prefix in repo.merge:
                if prefix.startswith("/"):
                    continue
                if full == prefix or full.startswith(prefix + "/"):
                    return repo, full[len(prefix):] or "/"
        return None

    def match_mirror_path(self, path: str) -> tuple[Repository, str] | None:
        """Mirror-style requests: /NAME/rest or a '/path' merge prefix."""
        for repo in self.repos:
            for prefix in [f"/{repo.name}"] + [m for m in repo.merge if m.startswith("/")]:
                if path == prefix or path.startswith(prefix + "/"):
                    return repo, path[len(prefix):] or "/"
        return None


def _norm_merge(entry: str) -> str | None:
    e = entry.strip()
    if not e:
        return None
    if e.startswith("/"):
        return e.rstrip("/") or "/"
    if "://" in e:
        parts = urlsplit(e)
        if not parts.hostname:
            return None
        default = 443 if parts.scheme == "https" else 80
        port = parts.port
        hp = parts.hostname.lower() + ("" if port in (None, default) else f":{port}")
        return hp + parts.path.rstrip("/")
    host, _, path = e.partition("/")
    return host.lower() + ("/" + path.rstrip("/") if path.strip("/") else "")


def _norm_target(entry: str) -> str | None:
    e = entry.strip()
    if not e or e.startswith("/"):
        return None
    if "://" not in e:
        e = "http://" + e
    parts = urlsplit(e)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return e.rstrip("/")


def _open_list(path: Path) -> str:
    with open_decompressed(path) as f:  # plain or compressed, judged by content
        return f.read().decode("utf-8", errors="replace")


def read_list_file(text: str) -> list[str]:
    """URLs from a list file: plain lines, or RFC 822 paragraphs with Site/Archive-http (Mirrors.masterlist)."""
    if re.search(r"^(Site|Archive-http):", text, re.MULTILINE | re.IGNORECASE):
        urls = []
        for para in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in para.splitlines():
                if ":" in line and not line.startswith((" ", "\t", "#")):
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
            site, arch = fields.get("site"), fields.get("archive-http")
            if site and arch:
                urls.append(f"http://{site}/{arch.lstrip('/')}")
        return urls
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


class _Parser:
    def __init__(self, cfg: RepoConfig) -> None:
        self.cfg = cfg

    def expand(self, entries: list[str], base: Path, where: str) -> list[str]:
        out: list[str] = []
        for e in entries:
            if e.startswith("file:"):
                pattern = e[5:]
                paths = sorted(glob.glob(str(base / pattern))) or sorted(glob.glob(pattern))
                if not paths:
                    self.cfg.problems.append(f"{where}: list file {pattern!r} not found")
                for p in paths:
                    try:
                        out.extend(read_list_file(_open_list(Path(p))))
                    except OSError as err:
                        self.cfg.problems.append(f"{where}: cannot read {p}: {err}")
            else:
                out.append(e)
        return out

    def normalised(self, entries: list[str], norm: Callable[[str], str | None], base: Path, where: str,
                   what: str) -> list[str]:
        out = []
        for e in self.expand(entries, base, where):
            n = norm(e)
            if n:
                out.append(n)
            else:
                self.cfg.problems.append(f"{where}: cannot use {what} {e!r}")
        return out

    def remap(self, name: str, value: str, base: Path, where: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            self.cfg.problems.append(f"{where}: bad repository name {name!r}")
            return
        parts = [p.strip() for p in value.split(";")]
        merge_raw = parts[0].split() if parts else []
        target_raw = parts[1].split() if len(parts) > 1 else []
        opts = parts[2].split() if len(parts) > 2 else []
        repo = Repository(name=name, merge=self.normalised(merge_raw, _norm_merge, base, where, "merge entry"),
                          targets=self.normalised(target_raw, _norm_target, base, where, "target"), origin=where)
        for o in opts:
            k, _, v = o.partition("=")
            if k == "keyfile" and v:
                try:
                    repo.keyfiles.append(re.compile(re.escape(v) + "$" if "/" not in v and not any(
                        c in v for c in "^$*+?()[]{}|\\") else v))
                except re.error as err:
                    self.cfg.problems.append(f"{where}: bad keyfile {v!r}: {err}")
            elif k == "proxy" and v:
                repo.proxy = v
            elif k == "keyring" and v:
                repo.keyrings = self._keyrings(v, base, where)
            else:
                self.cfg.problems.append(f"{where}: Remap option {o!r} is not supported")
        if not repo.merge:
            self.cfg.problems.append(f"{where}: Remap-{name} has an empty merge list")
            return
        self.cfg.repos.append(repo)

    def line(self, key: str, value: str, base: Path, where: str) -> None:
        k = key.lower()
        if k.startswith("remap-"):
            self.remap(key[6:], value, base, where)
        elif k == "passthroughpattern":
            self._regex(value, where, self.cfg.passthrough)
        elif k == "dontcache":
            self._regex(value, where, self.cfg.dont_cache)
        elif k == "forcemanaged":
            self.cfg.force_managed = self._bool(value, where)
        elif k == "offlinemode":
            self.cfg.offline = self._bool(value, where)
        elif k == "allowuserports":
            try:
                self.cfg.allow_ports = {int(p) for p in value.replace(",", " ").split()}
            except ValueError:
                self.cfg.problems.append(f"{where}: AllowUserPorts wants port numbers, got {value!r}")
        elif k == "adminauth":
            if ":" not in value:
                self.cfg.problems.append(f"{where}: AdminAuth wants USER:PASSWORD")
            else:
                self.cfg.admin_auth = value.strip()
        elif k in IGNORED_HARMLESS:
            self.cfg.notes.append(f"{where}: {key} is not used by pkgcache ({IGNORED_HARMLESS[k]})")
        else:
            self.cfg.problems.append(f"{where}: {key} is not supported by pkgcache; line ignored")

    def _keyrings(self, value: str, base: Path, where: str) -> tuple[Path, ...]:
        """keyring=: keyring files or folders (relative to the config file's folder), or none."""
        if value.lower() == "none":
            return ()
        paths = tuple((base / p).resolve() if not Path(p).is_absolute() else Path(p) for p in value.split(",") if p)
        for p in paths:
            if not p.exists():
                self.cfg.problems.append(f"{where}: keyring {p} does not exist; its signed indexes are refused")
        return paths

    def _regex(self, value: str, where: str, into: list[re.Pattern[str]]) -> None:
        try:
            into.append(re.compile(value.strip()))
        except re.error as err:
            self.cfg.problems.append(f"{where}: bad regular expression {value!r}: {err}")

    def _bool(self, value: str, where: str) -> bool:
        v = value.strip().lower()
        if v in ("1", "yes", "true", "on"):
            return True
        if v in ("0", "no", "false", "off", ""):
            return False
        self.cfg.problems.append(f"{where}: expected 0 or 1, got {value!r}")
        return False


def load_config(paths: list[Path]) -> RepoConfig:
    cfg = RepoConfig()
    parser = _Parser(cfg)
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e}") from None
        # apt-cacher-ng allows continuation lines ending in a backslash
        lines = text.splitlines()
        n = 0
        while n < len(lines):
            start = n
            line = lines[n]
            while line.endswith("\\") and n + 1 < len(lines):
                n += 1
                line = line[:-1] + " " + lines[n]
            n += 1
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            where = f"{path}:{start + 1}"
            key, sep, value = s.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                cfg.problems.append(f"{where}: not a 'Key: value' line: {s[:60]!r}")
                continue
            parser.line(key.strip(), value.strip(), path.parent, where)
    return cfg


class TargetHealth:
    """Which targets failed recently; a bad target is skipped for BAD_TARGET_SECONDS."""

    def __init__(self) -> None:
        self.bad_until: dict[str, float] = {}
        self.reasons: dict[str, str] = {}

    def mark_bad(self, target: str, reason: str) -> None:
        self.bad_until[target] = time.monotonic() + BAD_TARGET_SECONDS
        self.reasons[target] = reason

    def is_bad(self, target: str) -> bool:
        t = self.bad_until.get(target)
        return t is not None and t > time.monotonic()

    def snapshot(self) -> dict[str, str]:
        return {t: self.reasons.get(t, "") for t in self.bad_until if self.is_bad(t)}


def parse_conf(value: str) -> RepoConfig:
    """The repository config files (apt-cacher-ng syntax) named in pkgcache_conf."""
    files = [Path(p.strip()).expanduser() for p in value.split(",") if p.strip()]
    try:
        cfg = load_config(files)
    except ConfigError as e:
        raise ValueError(f"pkgcache_conf={value!r}: {e}") from None
    names = [r.name.lower() for r in cfg.repos]
    if len(set(names)) != len(names):
        raise ValueError("pkgcache_conf: a repository name is defined twice")
    return cfg
