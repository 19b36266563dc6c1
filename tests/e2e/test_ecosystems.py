"""Every ecosystem online and offline: what pkgcache_offline=on promises, known 404s, package-manager metadata."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.clients import _npm, _pip  # as recipes/python.md and recipes/npm.md say: their blocks, read
from support.origin import Origin
from support.proxy import wait_for
from support.rawhttp import raw

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


def test_offline_on_never_contacts_upstream_for_anything(origin: Origin, start_proxy) -> None:
    origin.put("/some/page.html", b"a web page")
    proxy = start_proxy("--set", "pkgcache_offline=on")
    with proxy.client() as c:
        r = c.get(origin.base + "/some/page.html")
        assert r.status_code == 504 and "pkgcache_offline=on" in r.text
        assert c.post(origin.base + "/api", content=b"x").status_code == 504
        stats = c.get("http://pkgcache/stats.json").json()
    assert origin.log == []
    assert stats["total"]["offline_miss"] == 2
    status, _, body = raw(proxy, f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=5)
    assert status == 504 and b"not intercepted" in body


def test_a_404_is_remembered_for_a_while_and_never_wanted_offline(origin: Origin, start_proxy, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe = "/opensuse/repo/media.1/media"
    proxy = start_proxy(cache_dir=cache)
    with proxy.client() as c:
        assert c.get(origin.base + DEB).status_code == 404
        r = c.get(origin.base + DEB)
        assert r.status_code == 404 and r.headers["x-cache"] == "HIT"
        assert c.get(origin.base + probe).status_code == 404
    assert origin.count(DEB) == 1
    proxy.stop()
    offline = start_proxy("--set", "pkgcache_offline=on", cache_dir=cache)
    with offline.client() as c:
        assert c.get(origin.base + DEB).status_code == 404
        r = c.get(origin.base + "/debian/pool/main/o/other/other_1_all.deb")
        assert r.status_code == 404 and "recorded" in r.text
    wanted = cache / ".pkgcache" / "wanted.json"
    wait_for(lambda: wanted.exists() and "other_1_all" in wanted.read_text(), what="the wanted list written")
    urls = [w["url"] for w in json.loads(wanted.read_text())["wanted"]]
    assert not any(u.endswith(DEB) for u in urls)
    offline.stop()
    # with pkgcache_negative_ttl=0 upstream is asked every time, and a file that appeared is served
    origin.put(DEB, b"now it exists")
    again = start_proxy("--set", "pkgcache_negative_ttl=0", cache_dir=cache)
    with again.client() as c:
        assert c.get(origin.base + DEB).content == b"now it exists"
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"


# -- PyPI ---------------------------------------------------------------------------------------------------


def test_pypi_simple_pages_are_stored_per_representation(origin: Origin, proxy) -> None:
    from support.ecosystems import serve_pypi

    wheel = serve_pypi(origin)
    html, js = {"Accept": "text/html"}, {"Accept": "application/vnd.pypi.simple.v1+json"}
    with proxy.client() as c:
        for _ in range(2):
            a = c.get(origin.base + "/simple/demo/", headers=js)
            b = c.get(origin.base + "/simple/demo/", headers=html)
            assert a.headers["content-type"].startswith("application/vnd.pypi.simple.v1+json") and a.json()["files"]
            assert b.headers["content-type"].startswith("text/html") and b"<a href" in b.content
        r = c.get(origin.base + wheel)  # a wheel outside /packages/ is cached by its name
        assert r.headers["x-cache"] == "MISS" and c.get(origin.base + wheel).headers["x-cache"] == "HIT"
    origin.stop()
    with proxy.client() as c:  # offline: each representation still goes to the client that asked for it
        assert c.get(origin.base + "/simple/demo/", headers=html).content.startswith(b"<!DOCTYPE html>")
        assert c.get(origin.base + "/simple/demo/", headers=js).json()["name"] == "demo"


def test_pip_cold_warm_and_offline(origin: Origin, start_proxy, tmp_path: Path) -> None:
    from support.ecosystems import serve_pypi
    from support.roundtrip import round_trip

    wheel = serve_pypi(origin)

    def pip(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
        r = _pip(proxy, origin, work)
        assert r.returncode != 0 or (work / wheel.rsplit("/", 1)[1]).exists()
        return r

    round_trip(pip, wheel, origin, start_proxy, tmp_path)


# -- npm ----------------------------------------------------------------------------------------------------


def test_npm_cold_warm_and_offline(origin: Origin, start_proxy, tmp_path: Path) -> None:
    from support.ecosystems import serve_npm
    from support.roundtrip import round_trip

    tarball = serve_npm(origin)

    def npm(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
        r = _npm(proxy, origin, work)
        assert r.returncode != 0 or (work / "project" / "node_modules" / "demo-pkg" / "index.js").exists()
        return r

    round_trip(npm, tarball, origin, start_proxy, tmp_path)


# -- apk's request sequence with its URL shapes and headers (the real client: tests/e2e/test_apk.py) ----------


def test_apk_request_sequence_cold_warm_and_offline(origin: Origin, start_proxy, tmp_path: Path) -> None:
    from support.apkrepo import Package, v2_repository
    from support.recipes import block
    from support.rpmpac import exports

    repository = block("alpine.md", 1, mirror=f"127.0.0.1:{origin.port}").strip()  # the recipe's line, as written
    base = repository.removeprefix(origin.base) + "/x86_64"
    files = v2_repository([Package("demo", "1.0-r0", {"usr/share/demo": b"demo\n"})])  # C: matches the package
    origin.put(f"{base}/APKINDEX.tar.gz", files["APKINDEX.tar.gz"])
    origin.put(f"{base}/demo-1.0-r0.apk", files["demo-1.0-r0.apk"])
    index, package = files["APKINDEX.tar.gz"], files["demo-1.0-r0.apk"]
    headers = {"User-Agent": "apk-tools/2.14.0", "Accept": "*/*"}
    cache = tmp_path / "cache"

    def apk(proxy) -> list[tuple[int, bytes]]:
        with proxy.client(headers=headers) as c:
            return [(r.status_code, r.content) for r in (c.get(f"{origin.base}{base}/APKINDEX.tar.gz"),
                                                         c.get(f"{origin.base}{base}/demo-1.0-r0.apk"))]

    proxy = start_proxy(cache_dir=cache)
    assert exports(block("alpine.md", 0, proxy.url.removeprefix("http://")))["http_proxy"] == proxy.url
    assert apk(proxy) == apk(proxy) == [(200, index), (200, package)]
    assert origin.count(f"{base}/demo-1.0-r0.apk") == 1
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        assert apk(p) == [(200, index), (200, package)], mode
        p.stop()
