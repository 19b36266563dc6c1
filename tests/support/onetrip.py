"""The offline side of the one-trip flow as a client runs it: stating wants with the README's line, and
reading what the datastore's wanted list holds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pkgcache_suite.proxy.wantpage import one_liner
from support.debrepo import AptClient
from support.proxy import Proxy


def wanted_doc(ds: Path) -> dict:
    try:
        return json.loads((ds / "wanted.json").read_text())
    except FileNotFoundError:
        return {}


def state_wants(apt: AptClient, proxy: Proxy, packages: str,
                status: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The README's line as a client runs it; only the apt options of the test's private client are added."""
    line = one_liner(proxy.url).replace("packages='hello'", f"packages='{packages}'")
    line = line.replace("apt-get indextargets", "apt-get " + " ".join(f"'{o}'" for o in apt.options())
                        + " indextargets", 1)
    line = line.replace("/var/lib/dpkg/status", str(status or apt.base / "state" / "status"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60, env=env)
