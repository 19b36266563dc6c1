"""Connect weather, in a network namespace of its own: of the new connections to the mirror, every fourth is
slow (its first SYN is dropped; the client's retransmission a second later gets through) and, for the
proxy, every third is also refused, while connections already open keep working; the mirror closes every
fifth connection after its answer, as a keep-alive limit does, so clients keep opening new ones.

The whole scenario runs under ``unshare -n`` (nothing but loopback): the rules are the namespace's own and
vanish with it.  apt meets the slow connects direct first (they must be survivable), then the proxy meets
both kinds, for an apt client cold and then warm.  Refused connects are not put to apt direct: apt gives up
on an address after its first refused connect, retries or not, so no direct run survives them; through
pkgcache a refused upstream connect is one failed request that apt's retry gets past.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from support.debrepo import AptClient, build_deb, write_indexes
from support.origin import Origin

TESTS = Path(__file__).resolve().parents[1]
PACKAGES = 40
REFUSE_EVERY, SLOW_EVERY, CLOSE_EVERY = 3, 4, 5
APT = ("-o", "Acquire::Retries=3")

_RUN = """
import json, sys
sys.path.insert(0, {tests!r})
from support.netweather import scenario
print(json.dumps(scenario(**json.loads(sys.argv[1]))))
"""


def in_namespace(setup: str, work: Path) -> dict:
    """Run the scenario for setup (embedded or tier) in a fresh network namespace; its report."""
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", _RUN.format(tests=str(TESTS)),
                        json.dumps({"setup": setup, "work": str(work)})],
                       capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        raise AssertionError(f"the scenario failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _weather(port: int, refuse: bool) -> None:
    syn = ["-p", "tcp", "--syn", "--dport", str(port), "-m", "statistic", "--mode", "nth"]
    rule = (["--every", str(REFUSE_EVERY), "--packet", "1", "-j", "REJECT", "--reject-with", "tcp-reset"] if refuse
            else ["--every", str(SLOW_EVERY), "--packet", "1", "-j", "DROP"])
    subprocess.run(["iptables", "-A", "INPUT", *syn, *rule], check=True, capture_output=True)


def _counters() -> dict[str, int]:
    out = subprocess.run(["iptables", "-L", "INPUT", "-n", "-v", "-x"], capture_output=True, text=True,
                         check=True).stdout
    rows = [ln.split() for ln in out.splitlines() if "statistic" in ln]
    return {row[2]: int(row[0]) for row in rows}  # target -> packets: REJECT refused, DROP slowed


def _install(base: Path, repo_url: str, proxy: str | None) -> dict:
    apt = AptClient(base, repo_url, proxy=proxy)
    results = [apt.run("update", *APT, check=False)]
    if results[0].returncode == 0:
        results.append(apt.run("install", "--download-only", *APT, "top", check=False))
    return {"rc": max(r.returncode for r in results),
            "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in apt.archives()},
            "out": "".join(r.stdout[-3000:] + r.stderr[-3000:] for r in results)}


def scenario(setup: str, work: str) -> dict:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    root = Path(work) / "root"
    repo = root / "debian"
    deps = ", ".join(f"w{i:02d}" for i in range(1, PACKAGES))
    debs = [build_deb(repo, "top", "1.0", 4_000, depends=deps)]
    debs += [build_deb(repo, f"w{i:02d}", "1.0", 4_000 + 61 * i) for i in range(1, PACKAGES)]
    write_indexes(repo)
    origin = Origin(root, close_every=CLOSE_EVERY).start()
    _weather(origin.port, refuse=False)
    url = f"{origin.base}/debian"
    report: dict = {"want": {d.name: hashlib.sha256(d.read_bytes()).hexdigest() for d in debs}}
    report["direct"] = _install(Path(work) / "direct", url, None)
    report["weather_direct"] = _counters()
    _weather(origin.port, refuse=True)
    if setup == "tier":
        from support.tier import TierProcess
        proc = TierProcess(Path(work) / "cache", 1)
    else:
        from support.proxy import Proxy
        proc = Proxy(Path(work) / "cache")
    try:
        report["cold"] = _install(Path(work) / "cold", url, proc.url)
        before = len(origin.log)
        report["warm"] = _install(Path(work) / "warm", url, proc.url)
        report["warm_package_requests"] = sum(1 for r in origin.log[before:] if r.path.endswith(".deb"))
        import httpx

        with httpx.Client(proxy=proc.url, trust_env=False, timeout=30) as c:
            report["total"] = c.get("http://pkgcache/stats.json").json()["total"]
    finally:
        proc.stop()
        origin.stop()
    report["weather"] = _counters()
    report["log"] = proc.log_text()[-6000:]
    return report
