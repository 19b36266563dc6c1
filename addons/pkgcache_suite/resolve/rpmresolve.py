"""Resolve a dnf or zypper client's wanted packages with dnf's solver, on the connected side.

The repositories' metadata fetch just put in the datastore is offered to dnf
as local repositories (repodata/ only: dnf resolves from metadata), in an
install root holding nothing but the client's rpmdb.  dnf's bindings belong to
the system's Python, so the solving runs there (dnf_solver.py), as a separate
process fed with JSON.  The resolved files are the client's own URLs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from pkgcache_suite.resolve.resolution import Resolution
from pkgcache_suite.wanted.wantspec import WantRequest

SOLVER = Path(__file__).with_name("dnf_solver.py")
TIMEOUT = 900
CANDIDATES = ("/usr/bin/python3", "/usr/libexec/platform-python")


@cache
def dnf_python() -> str | None:
    """A Python that can import dnf: this one, or the system's."""
    for exe in (sys.executable, *CANDIDATES):
        if not os.path.exists(exe):
            continue
        try:
            ok = subprocess.run([exe, "-c", "import dnf, hawkey, rpm"], capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if ok.returncode == 0:
            return exe
    return None


def resolve(req: WantRequest, repos: list[tuple[str, dict[str, Path]]], rpmdb: bytes | None) -> Resolution:
    """repos: (base URL, {path under the base (repodata/...): file in the datastore}) per fetched repository."""
    res = Resolution()
    exe = dnf_python()
    if exe is None:
        res.problems["*"] = ("dnf (with its Python bindings) is not installed here, so dependencies cannot be "
                             "resolved: only the repositories' metadata is fetched this trip")
        return res
    if not repos:
        res.problems["*"] = "none of the client's repositories could be fetched"
        return res
    with tempfile.TemporaryDirectory(prefix="pkgcache-rpmresolve-") as tmp:
        trees = []
        for n, (_base, files) in enumerate(repos):
            tree = Path(tmp) / "repos" / str(n)
            for rel, path in files.items():
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(path, tree / rel)
            trees.append(str(tree))
        job = {"root": f"{tmp}/root", "cache": f"{tmp}/cache", "arch": req.archs[0], "repos": trees,
               "packages": list(req.packages), "weak": req.recommends, "rpmdb": None}
        if rpmdb is not None:  # the client's database, verified against its digest, in this private folder
            (Path(tmp) / "rpmdb").write_bytes(rpmdb)
            job["rpmdb"] = f"{tmp}/rpmdb"
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["HOME"] = tmp  # rpm macros that name the home folder must not reach the user's own rpmdb
        try:
            r = subprocess.run([exe, str(SOLVER)], input=json.dumps(job), capture_output=True, text=True,
                               timeout=TIMEOUT, env=env)
            answer = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
            res.problems["*"] = f"dnf's solver failed: {e}"
            return res
        if answer is None:
            res.problems["*"] = f"dnf's solver failed: {r.stderr.strip()[-500:]}"
            return res
    for f in answer.get("files", []):
        base = repos[int(f["repo"])][0]
        res.urls.append((base + str(f["location"]).lstrip("/"), int(f["size"]), f.get("sha256")))
    res.problems.update({str(k): str(v) for k, v in answer.get("problems", {}).items()})
    return res
