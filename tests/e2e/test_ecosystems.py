"""Every ecosystem online and offline: what pkgcache_offline=on promises, known 404s, package-manager metadata."""

from __future__ import annotations

import json
from pathlib import Path

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
