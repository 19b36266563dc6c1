"""Mirror weather on loopback: what real mirrors do that our own repositories do not, with the real apt client.

The mirror's Release lists by-hash objects its tree does not have (apt falls back to the plain names), every
package file is redirected (302) to a second origin, as a CDN does, which answers with a CDN's extra headers,
some of them after a slow first byte and one after a 503 with Retry-After; a closure of a hundred packages
is one burst of pipelined requests.  apt succeeds going direct, and it must succeed the same way through the
embedded proxy and through the tier, in ``auto``, with no offline answer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.debrepo import AptClient, build_deb, write_indexes
from support.origin import Behaviour, Origin
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
