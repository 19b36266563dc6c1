"""`pkgcache want --proxy URL PACKAGE...`: state wanted packages from an offline machine that has pkgcache.

It sends what the page's form and the README's curl line send (the names, the
output of `apt-get indextargets`, the dpkg status) to the proxy's /want, so a
single fetch trip can bring the packages with their dependencies.  apt's own
configuration says where the status is, so APT_CONFIG and chroots are honoured.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from pkgcache_suite.offline.wantspec import WantError, parse_packages
from pkgcache_suite.proxy.report import RESERVED_HOST


def _apt(*args: str) -> str:
    r = subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise OSError(f"apt-get {' '.join(args)} failed: {r.stderr.strip()[-300:]}")
    return r.stdout


def status_path() -> Path:
    """Where this machine's dpkg status is, as apt sees it."""
    r = subprocess.run(["apt-config", "shell", "S", "Dir::State::status/f"], capture_output=True, text=True,
                       timeout=30)
    for word in shlex.split(r.stdout.replace("S=", "", 1)) if r.returncode == 0 else []:
        return Path(word)
    return Path("/var/lib/dpkg/status")


def run_want(proxy: str, packages: list[str], status: str | None, no_status: bool, arch: str | None,
             no_recommends: bool) -> int:
    try:
        parse_packages(" ".join(packages))
    except WantError as e:
        print(f"pkgcache want: {e}", file=sys.stderr)
        return 2
    try:
        targets = _apt("indextargets", "--no-release-info")
        status_data = None if no_status else Path(status or status_path()).read_bytes()
    except (OSError, subprocess.SubprocessError) as e:
        print(f"pkgcache want: {e}", file=sys.stderr)
        return 2
    data = {"packages": " ".join(packages), "recommends": "no" if no_recommends else "yes"}
    if arch:
        data["arch"] = arch
    files = {"targets": ("targets", targets.encode())}
    if status_data is not None:
        files["status"] = ("status", status_data)
    try:
        r = httpx.post(f"http://{RESERVED_HOST}/want", data=data, files=files, proxy=proxy, trust_env=False,
                       timeout=60)
    except httpx.HTTPError as e:
        print(f"pkgcache want: cannot reach the proxy {proxy}: {e}", file=sys.stderr)
        return 2
    out = sys.stdout if r.status_code == 200 else sys.stderr
    print(r.text.strip(), file=out)
    return 0 if r.status_code == 200 else 2
