"""Resolve an offline client's wanted packages with apt itself, on the connected side, in a private root.

apt is the resolver the client will run, so its answer is the one that counts:
Depends and Pre-Depends, alternatives, virtual packages, version constraints,
Multi-Arch and Recommends come out exactly as the client will see them.  The
private root holds the client's architectures, its dpkg status (so what is
installed is not fetched again) and the indexes fetch just put in the
datastore, offered to apt as a local ``file:`` repository per suite; nothing
of this machine's own apt configuration or state is read or touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from pkgcache_suite.resolve.resolution import Resolution
from pkgcache_suite.wanted.wantspec import WantRequest

TIMEOUT = 600
_URI_LINE = re.compile(r"^'(?P<uri>[^']+)' (?P<file>\S+) (?P<size>\d+) (?P<hash>\S*)$")


@dataclass
class Suite:
    """One suite as fetched: where its Release file and its Packages indexes are in the datastore."""

    repo: str  # repository URI ending in "/"
    suite: str
    components: tuple[str, ...]
    release: Path  # InRelease or Release
    release_name: str  # "InRelease" or "Release"
    indexes: dict[str, Path]  # name relative to dists/<suite>/ (main/binary-amd64/Packages.xz) -> file


def available() -> bool:
    return shutil.which("apt-get") is not None


class PrivateRoot:
    """An apt configuration that reads nothing of the machine's (APT_CONFIG names every folder)."""

    def __init__(self, where: Path, req: WantRequest, suites: list[Suite], status: bytes | None) -> None:
        self.dir = where
        self.suites = suites
        for d in ("etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
                  "cache/archives/partial", "log", "repo"):
            (where / d).mkdir(parents=True, exist_ok=True)
        status_file = where / "state" / "status"
        if status is not None:
            status_file.write_bytes(status)
        else:
            status_file.write_text("")
        lines = []
        for n, s in enumerate(suites):
            top = where / "repo" / str(n) / "dists" / s.suite
            top.mkdir(parents=True, exist_ok=True)
            os.symlink(s.release, top / s.release_name)
            for name, path in s.indexes.items():
                (top / name).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path, top / name)
            lines.append(f"deb [trusted=yes arch={','.join(req.archs)}] file:{where}/repo/{n} {s.suite} "
                         f"{' '.join(s.components)}")
        (where / "etc" / "sources.list").write_text("\n".join(lines) + "\n")
        conf = {
            "Dir": "/", "Dir::Etc": f"{where}/etc", "Dir::Etc::main": "apt.conf", "Dir::Etc::parts": "apt.conf.d",
            "Dir::Etc::sourcelist": "sources.list", "Dir::Etc::sourceparts": "sources.list.d",
            "Dir::Etc::preferences": "preferences", "Dir::Etc::preferencesparts": "preferences.d",
            "Dir::State": f"{where}/state", "Dir::State::status": str(status_file), "Dir::Cache": f"{where}/cache",
            "Dir::Log": f"{where}/log", "APT::Architecture": req.archs[0],
            "Debug::NoLocking": "true", "Acquire::Languages": "none", "Acquire::By-Hash": "no",
            "Acquire::PDiffs": "false", "Acquire::Check-Valid-Until": "false", "Acquire::Check-Date": "false",
            "APT::Install-Recommends": "true" if req.recommends else "false",
            "APT::Get::List-Cleanup": "false",
        }
        if os.geteuid() == 0:
            conf["APT::Sandbox::User"] = "root"  # the sandbox user could not read the datastore
        text = "".join(f'{k} "{v}";\n' for k, v in conf.items())
        text += "APT::Architectures { " + " ".join(f'"{a}";' for a in req.archs) + " };\n"
        (where / "apt.conf").write_text(text)

    def run(self, *args: str, quiet: str = "-qq") -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(APT_CONFIG=str(self.dir / "apt.conf"), LC_ALL="C.UTF-8")
        return subprocess.run(["apt-get", quiet, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT)

    def to_url(self, uri: str) -> str | None:
        """The client's URL for a file apt named in the private repository (apt's %-quoting undone)."""
        for n, s in enumerate(self.suites):
            for prefix in (f"file:{self.dir}/repo/{n}/", f"file://{self.dir}/repo/{n}/"):
                if uri.startswith(prefix):
                    return s.repo + unquote(uri[len(prefix):])
        return None


def _problem(out: str) -> str:
    """apt's own explanation: its error lines and the unmet dependencies it lists."""
    keep = [" ".join(ln.split()) for ln in out.splitlines() if ln.startswith("E:") or " : " in ln
            or ln.startswith(" " * 10) and ("Depends:" in ln or "Conflicts:" in ln or "Breaks:" in ln)]
    return "; ".join(keep[:8]) or out.strip()[-300:] or "apt-get failed without a message"


def _uris(root: PrivateRoot, packages: list[str]) -> tuple[list[tuple[str, int, str | None]] | None, str]:
    r = root.run("install", "--print-uris", "-y", *packages, quiet="-q")  # -qq would hide the unmet dependencies
    if r.returncode != 0:
        return None, _problem(r.stdout + "\n" + r.stderr)
    found: list[tuple[str, int, str | None]] = []
    for line in r.stdout.splitlines():
        m = _URI_LINE.match(line.strip())
        if not m:
            continue
        url = root.to_url(m["uri"])
        if url is None:
            return None, f"apt named a file outside the fetched repositories: {m['uri']}"
        digest = m["hash"].split(":", 1)
        sha = digest[1].lower() if len(digest) == 2 and digest[0].upper() == "SHA256" else None
        found.append((url, int(m["size"]), sha))
    return found, ""


def resolve(req: WantRequest, suites: list[Suite], status: bytes | None) -> Resolution:
    """The files apt would download to install req.packages on the client, or why it cannot."""
    res = Resolution()
    if not suites:
        res.problems["*"] = "none of the client's suites could be fetched"
        return res
    with tempfile.TemporaryDirectory(prefix="pkgcache-resolve-") as tmp:
        root = PrivateRoot(Path(tmp), req, suites, status)
        upd = root.run("update")
        if upd.returncode != 0:
            res.problems["*"] = f"apt-get update in the private root failed: {_problem(upd.stdout + upd.stderr)}"
            return res
        found, why = _uris(root, list(req.packages))
        if found is not None:
            res.urls = found
            return res
        # apt refuses the set as a whole: resolve one by one, so the rest still comes and each failure is named
        seen: set[str] = set()
        for pkg in req.packages:
            one, why = _uris(root, [pkg])
            if one is None:
                res.problems[pkg] = why
                continue
            for item in one:
                if item[0] not in seen:
                    seen.add(item[0])
                    res.urls.append(item)
    return res
