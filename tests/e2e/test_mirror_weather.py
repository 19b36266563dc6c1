"""Mirror weather on loopback: what real mirrors do that our own repositories do not, with the real apt client.

The mirror's Release lists by-hash objects its tree does not have (apt falls back to the plain names), every
package file is redirected (302) to a second origin, as a CDN does, which answers with a CDN's extra headers,
some of them after a slow first byte and one after a 503 with Retry-After; a closure of a hundred packages
is one burst of pipelined requests.  apt succeeds going direct, and it must succeed the same way through the
embedded proxy and through the tier, in ``auto``, with no offline answer.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from support.debrepo import ARCH, AptClient, build_deb, write_indexes
from support.origin import Behaviour, Origin
from support.proxy import wait_for
from support.tier import TierProcess

pytestmark = pytest.mark.usefixtures("apt_tools")

N = 100
CDN_HEADERS = [("Via", "1.1 varnish"), ("X-Cache", "HIT, HIT"), ("Age", "4242"), ("X-Served-By", "cache-edge-1"),
               ("Cache-Control", "public, max-age=120"), ("X-Accel-Buffering", "no"), ("Set-Cookie", "edge=1")]


@pytest.fixture
def weather(tmp_path: Path):
    (tmp_path / "root").mkdir()
    repo = tmp_path / "root" / "debian"
    deps = ", ".join(f"p{i:03d}" for i in range(1, N))
    debs = [build_deb(repo, "top", "1.0", 5_000, depends=deps)]
    debs += [build_deb(repo, f"p{i:03d}", "1.0", 5_000 + 97 * i) for i in range(1, N)]
    write_indexes(repo, by_hash=True)
    for d in list((repo / "dists").rglob("by-hash")):
        shutil.rmtree(d)  # the Release still says Acquire-By-Hash and lists them
    mirror = Origin(tmp_path / "root").start()
    cdn = Origin(tmp_path / "root", extra_headers=CDN_HEADERS).start()
    for i, deb in enumerate(debs):
        path = "/" + str(deb.relative_to(tmp_path / "root"))
        mirror.behaviours[path] = Behaviour(redirect=cdn.base + path)
        if i % 25 == 3:
            cdn.behaviours[path] = Behaviour(delay=1.5)  # a slow first byte
    yield mirror, cdn, debs
    mirror.stop()
    cdn.stop()


def _install(tmp_path: Path, name: str, mirror: Origin, proxy: str | None) -> AptClient:
    apt = AptClient(tmp_path / name, f"{mirror.base}/debian", proxy=proxy)
    apt.run("update", "-o", "Acquire::Retries=3")
    apt.run("install", "--download-only", "-o", "Acquire::Retries=3", "top")
    return apt


def _through(setup: str, tmp_path: Path, start_proxy) -> tuple[str, object]:
    if setup == "embedded":
        p = start_proxy(cache_dir=tmp_path / "cache")
        return p.url, p
    t = TierProcess(tmp_path / "cache", 1)
    return t.url, t


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_apt_through_pkgcache_succeeds_wherever_it_succeeds_direct(weather, tmp_path: Path, start_proxy,
                                                                   setup: str) -> None:
    mirror, cdn, debs = weather
    direct = _install(tmp_path, "direct", mirror, None)
    want = {d.name: d.read_bytes() for d in debs}
    assert {p.name: p.read_bytes() for p in direct.archives()} == want  # the weather is survivable direct
    url, proc = _through(setup, tmp_path, start_proxy)
    try:
        apt = _install(tmp_path, "proxied", mirror, url)
        assert {p.name: p.read_bytes() for p in apt.archives()} == want
        import httpx

        with httpx.Client(proxy=url, trust_env=False, timeout=30) as c:
            total = c.get("http://pkgcache/stats.json").json()["total"]
        assert total.get("offline_miss", 0) == 0, total
        # warm: a second fresh client gets every package file from the cache
        before = sum(cdn.count("/" + str(d.relative_to(cdn.root))) for d in debs)
        again = _install(tmp_path, "warm", mirror, url)
        assert {p.name: p.read_bytes() for p in again.archives()} == want
        assert sum(cdn.count("/" + str(d.relative_to(cdn.root))) for d in debs) == before
    finally:
        proc.stop()  # type: ignore[attr-defined]


def _switch_release_during_update(tmp_path: Path, proxy: str | None, name: str) -> tuple[AptClient, Origin, dict]:
    """The mirror publishes a new Release while a client's `apt-get update` is under way: the client read the
    old InRelease and asks for the old by-hash indexes (which a mirror keeps for a while, as Debian's do);
    the old package files stay in the pool.  Returns the client, the origin and the debs of both versions."""
    import threading

    root = tmp_path / f"{name}-root"
    repo = root / "debian"
    old = {"tool": build_deb(repo, "tool", "1.0", 8_000), "lib": build_deb(repo, "lib", "1.0", 6_000)}
    write_indexes(repo, by_hash=True)
    keep = tmp_path / f"{name}-by-hash"
    shutil.copytree(repo / "dists" / "stable" / "main" / f"binary-{ARCH}" / "by-hash", keep)
    origin = Origin(root).start()
    xz = (repo / "dists/stable/main" / f"binary-{ARCH}" / "Packages.xz").read_bytes()
    held = f"/debian/dists/stable/main/binary-{ARCH}/by-hash/SHA256/{hashlib.sha256(xz).hexdigest()}"
    origin.behaviours[held] = gate = Behaviour(gate_at=0)
    apt = AptClient(tmp_path / name, f"{origin.base}/debian", proxy=proxy)
    done: list = []
    t = threading.Thread(target=lambda: done.append(apt.run("update", check=False)))
    t.start()
    wait_for(lambda: origin.count(held) >= 1, timeout=30, what="the client asking for the old index")
    new = {"tool": build_deb(repo, "tool", "2.0", 9_000), "lib": build_deb(repo, "lib", "2.0", 7_000)}
    write_indexes(repo, by_hash=True)  # the new Release; the old by-hash objects are put back beside the new
    shutil.copytree(keep, repo / "dists" / "stable" / "main" / f"binary-{ARCH}" / "by-hash", dirs_exist_ok=True)
    gate.gate.set()
    t.join(60)
    assert done and done[0].returncode == 0, done and (done[0].stdout + done[0].stderr)
    return apt, origin, {"old": old, "new": new}


@pytest.mark.parametrize("setup", ["direct", "embedded", "tier"])
def test_a_release_published_during_an_update(tmp_path: Path, start_proxy, setup: str) -> None:
    """The update that straddled the switch installs the old versions; the next update the new ones; through
    pkgcache exactly as direct, and a second client of the proxy gets the new index, not the one cached
    mid-switch."""
    proc = None
    url = None
    if setup != "direct":
        url, proc = _through(setup, tmp_path, start_proxy)
    try:
        apt, origin, debs = _switch_release_during_update(tmp_path, url, "client")
        apt.run("install", "--download-only", "tool", "lib")
        assert {p.name for p in apt.archives()} == {d.name for d in debs["old"].values()}
        apt.run("update")
        apt.run("install", "--download-only", "tool", "lib")
        assert {d.name for d in debs["new"].values()} <= {p.name for p in apt.archives()}
        other = AptClient(tmp_path / "other", f"{origin.base}/debian", proxy=url)
        other.run("update")
        other.run("install", "--download-only", "tool", "lib")
        assert {p.name: p.read_bytes() for p in other.archives()} == {d.name: d.read_bytes()
                                                                       for d in debs["new"].values()}
        origin.stop()
    finally:
        if proc is not None:
            proc.stop()  # type: ignore[attr-defined]


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_retry_after_is_passed_on_and_nothing_is_kept(weather, tmp_path: Path, start_proxy, setup: str) -> None:
    """A mirror that is busy answers 503 with Retry-After: the client gets that answer as it is (apt and pip
    decide when to come back), nothing of it is cached or recorded as missing, and the retry is a plain miss."""
    import httpx

    mirror, cdn, debs = weather
    path = "/" + str(debs[1].relative_to(cdn.root))
    cdn.behaviours[path] = Behaviour(fail_times=1, headers=[("Retry-After", "1")])
    url, proc = _through(setup, tmp_path, start_proxy)
    try:
        with httpx.Client(proxy=url, trust_env=False, timeout=30) as c:
            r = c.get(cdn.base + path)
            assert r.status_code == 503 and r.headers.get("retry-after") == "1", (r.status_code, r.headers)
            r = c.get(cdn.base + path)
            assert r.status_code == 200 and r.content == debs[1].read_bytes()
            assert r.headers.get("x-cache") == "MISS"
            assert c.get(cdn.base + path).headers.get("x-cache") == "HIT"
            total = c.get("http://pkgcache/stats.json").json()["total"]
        assert total["offline_miss"] == 0 and total["known_404"] == 0, total
        assert cdn.count(path) == 2
    finally:
        proc.stop()  # type: ignore[attr-defined]


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_a_by_hash_index_is_served_from_its_plain_name(weather, tmp_path: Path, start_proxy, setup: str) -> None:
    """The mirror lacks its by-hash objects: the first client falls back to the plain name, which the proxy
    caches; the next client's by-hash request is the same bytes by digest, answered from that copy, online
    (never asked of the mirror again) and offline (no offline miss, nothing recorded as wanted)."""
    import httpx

    mirror, _cdn, _debs = weather
    url, proc = _through(setup, tmp_path, start_proxy)
    try:
        _install(tmp_path, "first", mirror, url)
        by_hash = [r.path for r in mirror.log if "/by-hash/" in r.path]
        assert by_hash, "apt asked by hash first"
        _install(tmp_path, "second", mirror, url)
        assert [r.path for r in mirror.log if "/by-hash/" in r.path] == by_hash, "asked upstream again"
        mirror.stop()
        third = AptClient(tmp_path / "third", f"{mirror.base}/debian", proxy=url)
        r = third.run("update")
        assert "Err" not in r.stdout, r.stdout
        with httpx.Client(proxy=url, trust_env=False, timeout=30) as c:
            r = c.get(mirror.base + by_hash[0])
            assert r.status_code == 200 and r.headers.get("x-cache") == "HIT", (r.status_code, r.text)
            total = c.get("http://pkgcache/stats.json").json()["total"]
        assert total["offline_miss"] == 0, total
    finally:
        proc.stop()  # type: ignore[attr-defined]
