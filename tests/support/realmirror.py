"""The Debian mirror this machine's apt uses, read from its sources at run time (the project names none), and
the real clients run against it: debootstrap, and everything inside a network namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from debian import deb822

SOURCES = Path("/etc/apt/sources.list")
SOURCE_PARTS = Path("/etc/apt/sources.list.d")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
TESTS = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mirror:
    uri: str  # http://.../debian, as the machine's apt has it
    suite: str  # the release itself (bookworm), not -updates or -security


def _entries() -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, types) of every source the machine's apt reads, one-line and deb822 alike."""
    out: list[tuple[str, list[str], list[str]]] = []
    one_line = [SOURCES] + sorted(SOURCE_PARTS.glob("*.list"))
    for f in (p for p in one_line if p.is_file()):
        for line in f.read_text().splitlines():
            words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] in ("deb", "deb-src"):
                out.append((words[1], [words[2]], [words[0]]))
    for f in sorted(SOURCE_PARTS.glob("*.sources")):
        for para in deb822.Deb822.iter_paragraphs(f.read_text()):
            if para.get("Enabled", "yes").lower() == "no":
                continue
            for uri in para.get("URIs", "").split():
                out.append((uri, para.get("Suites", "").split(), para.get("Types", "").split()))
    return out


def machine_mirror() -> Mirror | None:
    """The first plain-HTTP Debian source whose suite is a release (no -updates, -security, /updates)."""
    for uri, suites, types in _entries():
        if "deb" not in types or not uri.startswith("http://"):
            continue
        for suite in suites:
            if "-" not in suite and "/" not in suite:
                return Mirror(uri.rstrip("/"), suite)
    return None


def debootstrap(target: Path, mirror: Mirror, proxy: str | None, timeout: float = 900) \
        -> subprocess.CompletedProcess[str]:
    """`debootstrap --download-only --variant=minbase` of the mirror's release into target, through proxy."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    if proxy:
        env["http_proxy"] = proxy
    return subprocess.run(["debootstrap", "--download-only", "--variant=minbase", f"--keyring={KEYRING}",
                           mirror.suite, str(target), mirror.uri], capture_output=True, text=True, env=env,
                          timeout=timeout)


# Runs inside `unshare -n`: loopback only, so the mirror is really gone for proxy and client alike.
_OFFLINE_RUN = """
import json, subprocess, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
from support.realmirror import Mirror, debootstrap
import httpx
args = json.loads(sys.argv[1])
if args["setup"] == "tier":
    from support.tier import TierProcess
    proc = TierProcess(Path(args["cache"]), 1)
else:
    from support.proxy import Proxy
    proc = Proxy(Path(args["cache"]))
try:
    r = debootstrap(Path(args["target"]), Mirror(**args["mirror"]), proc.url)
    with httpx.Client(proxy=proc.url, trust_env=False, timeout=30) as c:
        stats = c.get("http://pkgcache/stats.json").json()
finally:
    proc.stop()
print(json.dumps({{"rc": r.returncode, "out": r.stdout[-4000:] + r.stderr[-4000:], "stats": stats,
                  "log": proc.log_text()[-4000:]}}))
"""


def debootstrap_offline(setup: str, cache: Path, target: Path, mirror: Mirror) -> dict:
    """The same debootstrap with the proxy (embedded or tier, on cache) and the client in a network namespace
    that has nothing but loopback."""
    args = json.dumps({"setup": setup, "cache": str(cache), "target": str(target),
                       "mirror": {"uri": mirror.uri, "suite": mirror.suite}})
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", _OFFLINE_RUN.format(tests=str(TESTS)), args],
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        raise AssertionError(f"the offline run failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
