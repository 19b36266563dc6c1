"""A suite switches atomically, with the real apt: a Release switched mid-update never gives a client a Packages
its InRelease does not name.

The mirror updates its indexes first and its InRelease last (as mirror scripts do): in between, a client that
reads the old InRelease must get the old Packages, which the cache still holds; once the mirror is done, a
client that reads the new InRelease gets the new Packages, and one still on the old InRelease (another
address) keeps getting the old one from the cache, without upstream being asked.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import rawhttp
from support.debrepo import AptClient, build_deb, write_indexes
from support.origin import Behaviour, Origin
from support.proxy import wait_for

SUITE = "dists/stable"
OTHER = "127.0.0.2"


def _candidate(apt: AptClient, name: str) -> str:
    out = apt.run("-s", "install", name).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(f"Inst {name} "))
    return line.split("(", 1)[1].split()[0]


def _from_other_machine(proxy, url: str) -> tuple[bytes, bytes]:
    """(head, body) of a GET from another loopback address: another machine, to the cache."""
    status, head, body = rawhttp.get(proxy, url, source=OTHER)
    assert status == 200, head
    return head, body


@pytest.mark.usefixtures("apt_tools")
@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_a_release_switched_mid_update(setup: str, origin: Origin, start_proxy, start_tier, tmp_path) -> None:
    """The same on the embedded proxy and on the tier, where one worker may answer a client's InRelease and
    another its Packages."""
    repo = origin.root / "debian"
    suite = repo / SUITE
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache) if setup == "embedded" else start_tier(cache_dir=cache)
    first = AptClient(tmp_path / "first", f"{origin.base}/debian", proxy=proxy.url)
    first.run("update")
    held = sorted(p.name for p in (next(cache.glob("127.0.0.1_*")) / "debian" / SUITE / "main").glob("*/Packages*"))
    assert held, "apt fetched no Packages index through the cache"
    index_dir = next((suite / "main").glob("binary-*"))
    name = f"{SUITE}/main/{index_dir.name}/{held[0]}"
    old_index = (repo / name).read_bytes()
    old_release = {n: (suite / n).read_bytes() for n in ("InRelease", "Release", "Release.gpg")}

    # mid-update: the new indexes are in place, the InRelease is still the old one
    build_deb(repo, "alpha", "2.0")
    write_indexes(repo)
    new_release = {n: (suite / n).read_bytes() for n in old_release}
    for n, data in old_release.items():
        (suite / n).write_bytes(data)
    assert (repo / name).read_bytes() != old_index
    second = AptClient(tmp_path / "second", f"{origin.base}/debian", proxy=proxy.url)
    second.run("update")  # no "Hash Sum mismatch": the Packages its InRelease names
    assert _candidate(second, "alpha") == "1.0"
    assert _from_other_machine(proxy, f"{origin.base}/debian/{SUITE}/InRelease")[1] == old_release["InRelease"]

    # the mirror is done: a client reading the new InRelease gets the new indexes
    for n, data in new_release.items():
        (suite / n).write_bytes(data)
    first.run("update")
    assert _candidate(first, "alpha") == "2.0"
    # the other address still reads the old InRelease: the old Packages, from the cache, upstream not asked
    asked = origin.count(f"/debian/{name}")
    head, body = _from_other_machine(proxy, f"{origin.base}/debian/{name}")
    assert body == old_index and b"x-cache: hit" in head.lower()
    assert origin.count(f"/debian/{name}") == asked
    with proxy.client() as c:  # and this address, on the new InRelease, the new ones
        assert c.get(f"{origin.base}/debian/{name}").content == (repo / name).read_bytes()
    kept = next(cache.glob("127.0.0.1_*")) / "debian" / name.rpartition("/")[0] / "by-hash" / "SHA256"
    assert sorted(p.name for p in kept.iterdir()) == [hashlib.sha256(old_index).hexdigest()]

    # one more Release: the copy kept for the one before last goes
    build_deb(repo, "alpha", "3.0")
    write_indexes(repo)
    first.run("update")
    assert _candidate(first, "alpha") == "3.0"
    assert hashlib.sha256(old_index).hexdigest() not in {p.name for p in kept.iterdir()}


@pytest.mark.usefixtures("apt_tools")
def test_50_apt_clients_on_a_slow_index_refresh(origin: Origin, start_proxy, tmp_path) -> None:
    """pkgcache_index_fresh with the real apt: 50 apt-get update while the InRelease refresh is held upstream all
    finish at once, on one consistent suite (the cached InRelease and the Packages it names); one refresh goes
    upstream, and once it is in, the next client gets the new suite whole."""
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    proxy = start_proxy("--set", "pkgcache_index_fresh=600", cache_dir=tmp_path / "cache")
    AptClient(tmp_path / "warm", f"{origin.base}/debian", proxy=proxy.url).run("update")
    build_deb(repo, "alpha", "2.0")
    write_indexes(repo)
    inrelease = f"/debian/{SUITE}/InRelease"
    held = Behaviour(gate_at=10)
    origin.behaviours[inrelease] = held
    clients = [AptClient(tmp_path / f"c{i}", f"{origin.base}/debian", proxy=proxy.url) for i in range(50)]
    with ThreadPoolExecutor(50) as pool:
        runs = list(pool.map(lambda a: a.run("update", check=False), clients))  # the refresh is still held
    assert not held.gate.is_set()
    assert all(r.returncode == 0 for r in runs), next(r.stdout + r.stderr for r in runs if r.returncode)
    assert {_candidate(a, "alpha") for a in clients} == {"1.0"}
    wait_for(lambda: origin.count(inrelease) == 2, what="the one background refresh")
    held.gate.set()
    new_inrelease = (repo / SUITE / "InRelease").read_bytes()
    wait_for(lambda: rawhttp.get(proxy, origin.base + inrelease, source=OTHER)[2] == new_inrelease,
             timeout=60, what="the refreshed InRelease in the cache")
    late = AptClient(tmp_path / "late", f"{origin.base}/debian", proxy=proxy.url)
    late.run("update")  # the new InRelease, and the Packages it names, though the old one is young
    assert _candidate(late, "alpha") == "2.0"
