"""`pkgcache want --proxy URL PACKAGE...` (or `--oci IMAGE`): state wanted packages, or container images,
from an offline machine that has pkgcache.

It sends what the page's form and the README's curl line send (the names, the
output of `apt-get indextargets`, the dpkg status; with --rpm the architecture
and the rpmdb) to the proxy's /want, so a single fetch trip can bring the
packages with their dependencies.  apt's own configuration says where the
status is, so APT_CONFIG and chroots are honoured.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pkgcache_suite.policy import oci
from pkgcache_suite.wanted.wantspec import WantError, parse_packages
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


def rpmdb_path() -> Path:
    """This machine's rpmdb.sqlite, as rpm's macros place it."""
    r = subprocess.run(["rpm", "--eval", "%{_dbpath}"], capture_output=True, text=True, timeout=30)
    return Path(r.stdout.strip() or "/var/lib/rpm") / "rpmdb.sqlite"


def _rpm_form(args: WantArgs) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    data = {"format": "rpm", "arch": args.arch or platform.machine(), "repos": " ".join(args.repos)}
    files: dict[str, tuple[str, bytes]] = {}
    db = Path(args.status) if args.status else rpmdb_path()
    if not args.no_status and (args.status or db.is_file()):  # openSUSE's rpmdb is not sqlite: then none
        files["rpmdb"] = ("rpmdb.sqlite", db.read_bytes())
    return data, files


def _apt_form(args: WantArgs) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    data = {"arch": args.arch} if args.arch else {}
    files = {"targets": ("targets", _apt("indextargets", "--no-release-info").encode())}
    if not args.no_status:
        files["status"] = ("status", Path(args.status or status_path()).read_bytes())
    return data, files


@dataclass
class WantArgs:
    proxy: str
    packages: list[str]
    status: str | None = None
    no_status: bool = False
    arch: str | None = None
    no_recommends: bool = False
    rpm: bool = False
    repos: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


def _form(args: WantArgs) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """What to post: images by reference, or packages with this machine's package state (WantError, OSError)."""
    if args.images:
        if args.packages:
            raise WantError("state packages or images (--oci), not both at once")
        for ref in args.images:
            try:
                oci.reference_url(ref)
            except ValueError as e:
                raise WantError(str(e)) from None
        return {"format": "oci", "images": " ".join(args.images)}, {}
    parse_packages(" ".join(args.packages), "rpm" if args.rpm else "deb")
    data, files = _rpm_form(args) if args.rpm else _apt_form(args)
    data.update(packages=" ".join(args.packages), recommends="no" if args.no_recommends else "yes")
    return data, files


def run_want(args: WantArgs) -> int:
    try:
        data, files = _form(args)
    except (WantError, OSError, subprocess.SubprocessError) as e:
        print(f"pkgcache want: {e}", file=sys.stderr)
        return 2
    proxy = args.proxy
    try:
        r = httpx.post(f"http://{RESERVED_HOST}/want", data=data, files=files, proxy=proxy, trust_env=False,
                       timeout=60)
    except httpx.HTTPError as e:
        print(f"pkgcache want: cannot reach the proxy {proxy}: {e}", file=sys.stderr)
        return 2
    out = sys.stdout if r.status_code == 200 else sys.stderr
    print(r.text.strip(), file=out)
    return 0 if r.status_code == 200 else 2
