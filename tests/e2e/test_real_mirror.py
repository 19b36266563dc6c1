"""The one bounded test against the real Debian mirror this machine's apt uses (read from its sources at run time).

A minimal system of the machine's release (`debootstrap --variant=minbase --download-only`) through the embedded
proxy and through the tier: cold (every file from the mirror, no offline answer), warm after a restart (no
package file fetched upstream twice), then offline inside a network namespace with nothing but loopback, proxy
and client both.  Then the one-trip flow for a fresh client: offline `apt-get update` fails, the client states
what it wants, one `pkgcache fetch`, import, and offline `apt-get update` and install succeed.  About 40 MB
per setup and 15 MB for the trip: well under 150 MB from the mirror per run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from support.debrepo import AptClient
from support.onetrip import state_wants, wanted_doc
from support.proxy import Proxy, wait_for
from support.realmirror import Mirror, debootstrap, debootstrap_offline, machine_mirror
from support.tier import TierProcess

MB = 1 << 20
PER_SETUP = 75 * MB  # what one cold minimal system may take from the mirror, indexes included
TRIP = 40 * MB


@pytest.fixture(scope="module")
def mirror() -> Mirror:
    m = machine_mirror()
    if m is None:
        pytest.fail("this machine's apt sources name no plain-HTTP Debian release to test against")
    try:
        r = httpx.get(f"{m.uri}/dists/{m.suite}/InRelease", timeout=30, trust_env=False)
    except httpx.HTTPError as e:
        pytest.fail(f"the machine's mirror {m.uri} does not answer: {e}")
    assert r.status_code == 200, f"{m.uri}/dists/{m.suite}/InRelease: HTTP {r.status_code}"
    return m


def _start(setup: str, cache: Path) -> Proxy | TierProcess:
    return Proxy(cache) if setup == "embedded" else TierProcess(cache, 1)


def _stats(url: str) -> dict:
    with httpx.Client(proxy=url, trust_env=False, timeout=30) as c:
        return c.get("http://pkgcache/stats.json").json()


def _debs(target: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (target / "var/cache/apt/archives").glob("*.deb")}


def _bootstrap(setup: str, cache: Path, target: Path, mirror: Mirror,
               hits: int = 0) -> tuple[subprocess.CompletedProcess, dict]:
    """debootstrap through a freshly started proxy; the counters once at least `hits` package hits are in
    (the tier's front counts its hits from its log, a moment later)."""
    proc = _start(setup, cache)
    try:
        r = debootstrap(target, mirror, proc.url)
        if r.returncode == 0 and hits:
            wait_for(lambda: _stats(proc.url)["by_kind"]["immutable"]["hit"] >= hits, timeout=30,
                     what=f"{hits} package hits counted")
        return r, _stats(proc.url)
    finally:
        proc.stop()


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_a_minimal_system_cold_warm_and_offline(mirror: Mirror, tmp_path: Path, setup: str) -> None:
    cache = tmp_path / "cache"
    r, cold = _bootstrap(setup, cache, tmp_path / "cold", mirror)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    debs = _debs(tmp_path / "cold")
    assert len(debs) > 50, debs  # a real closure, validated by debootstrap against the signed indexes
    total = cold["total"]
    assert total["offline_miss"] == 0 and total["failed"] == 0, total
    assert total["bytes_from_upstream"] < PER_SETUP, total
    misses = cold["by_kind"]["immutable"]["miss"]
    assert misses >= len(debs), cold["by_kind"]

    r, warm = _bootstrap(setup, cache, tmp_path / "warm", mirror, hits=len(debs))  # restarted: from the cache
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert _debs(tmp_path / "warm") == debs
    immutable = warm["by_kind"]["immutable"]
    assert immutable["miss"] == misses, "a package file was fetched upstream twice"
    assert immutable["hit"] >= len(debs), immutable
    assert warm["total"]["offline_miss"] == 0, warm["total"]

    out = debootstrap_offline(setup, cache, tmp_path / "offline", mirror)  # the mirror is gone
    assert out["rc"] == 0, out["out"] + out["log"]
    assert _debs(tmp_path / "offline") == debs
    assert out["stats"]["by_kind"]["immutable"]["miss"] == misses, out["stats"]["by_kind"]
    assert out["stats"]["total"]["offline_miss"] == 0, out["stats"]["total"]


def test_one_trip_for_a_fresh_client_of_the_real_mirror(mirror: Mirror, start_proxy, tmp_path: Path) -> None:
    """The site's offline proxy never reaches the mirror (pkgcache_offline=on); the trip is `pkgcache fetch`.
    Whatever skew the mirror's by-hash tree has today, fetch falls back as apt does, and the update verifies."""
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", mirror.uri, proxy=proxy.url, suite=mirror.suite)
    assert apt.run("update", check=False).returncode != 0  # a fresh client has no lists, and nothing upstream
    r = state_wants(apt, proxy, "hello")
    assert r.returncode == 0 and "recorded request" in r.stdout, r.stdout + r.stderr

    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "NOT RESOLVED" not in r.stdout and "FAILED" not in r.stdout, r.stdout
    manifest = json.loads((ds / "manifest.json").read_text())
    fetched = sum(rec["size"] for rec in manifest["files"].values())
    assert fetched < TRIP, "\n".join(f"{rec['size']:>10} {u}" for u, rec in manifest["files"].items() if rec["size"] > MB) + r.stdout
    debs = {u.rsplit("/", 1)[-1] for u in manifest["files"] if u.endswith(".deb")}
    assert any(d.startswith("hello_") for d in debs) and any(d.startswith("libc6_") for d in debs), debs

    wait_for(lambda: not wanted_doc(ds).get("requests") and not wanted_doc(ds).get("wanted"), timeout=60,
             what="the import of the trip")
    r = apt.run("update")
    assert "Err" not in r.stdout, r.stdout
    apt.run("install", "--download-only", "hello")
    assert {p.name for p in apt.archives()} == debs
    assert wanted_doc(ds).get("wanted") == [], "nothing was missing on the second offline run"
