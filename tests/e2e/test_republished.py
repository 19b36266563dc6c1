"""Every package file checked against the index that lists it, with the real clients: a file whose bytes are
not the ones its index lists is passed on and never stored, and a file republished under the same name (the
index now lists other bytes) drops the cached copy, is fetched again and counted."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support.ecosystems import build_wheel, serve_npm, serve_pypi
from support.origin import Origin
from support.proxy import Proxy, wait_for

from support.clients import _npm, _pip  # the clients configured as their recipes say


def _republished(proxy: Proxy) -> float:
    with proxy.client() as c:
        text = c.get("http://pkgcache/metrics").text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "pkgcache_requests_total" and s.labels.get("outcome") == "republished"
               and s.labels.get("class"))


def test_pip_republished_wheel_is_dropped_and_fetched_again(origin: Origin, start_proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin)
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    assert _pip(proxy, origin, tmp_path / "first").returncode == 0
    new = build_wheel(value=43)[1]
    serve_pypi(origin, value=43)  # the same name, other bytes, and the page says so
    r = _pip(proxy, origin, tmp_path / "second")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "second" / wheel.rsplit("/", 1)[1]).read_bytes() == new
    assert origin.count(wheel) == 2
    wait_for(lambda: _republished(proxy) == 1, what="the republished copy counted")
    assert "dropped stale copy" in proxy.log_text()


def test_pip_wheel_unlike_its_simple_page_is_never_stored(origin: Origin, start_proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin, listed=b"other bytes")
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    r = _pip(proxy, origin, tmp_path / "out")
    assert r.returncode != 0 and "hash" in (r.stdout + r.stderr).lower()  # pip itself refuses it
    wait_for(lambda: any(v in proxy.log_text() for v in ("_index_: what it lists is recorded",
                                                        "_index_~pypi-json: what it lists is recorded")),
             what="the page's listing recorded")
    with proxy.client() as c:
        for _ in range(2):
            assert c.get(origin.base + wheel).headers["x-cache"] == "MISS"
    assert "SHA-256 mismatch" in proxy.log_text()


def test_npm_republished_tarball_is_dropped_and_fetched_again(origin: Origin, start_proxy, tmp_path: Path) -> None:
    tarball = serve_npm(origin)
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    assert _npm(proxy, origin, tmp_path / "first").returncode == 0
    serve_npm(origin, value=43)
    r = _npm(proxy, origin, tmp_path / "second")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "43" in (tmp_path / "second/project/node_modules/demo-pkg/index.js").read_text()
    assert origin.count(tarball) == 2
    wait_for(lambda: _republished(proxy) == 1, what="the republished copy counted")


def test_npm_tarball_unlike_its_integrity_is_never_stored(origin: Origin, start_proxy, tmp_path: Path) -> None:
    tarball = serve_npm(origin, listed=b"other bytes")
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    r = _npm(proxy, origin, tmp_path / "out")
    assert r.returncode != 0  # npm itself refuses it (EINTEGRITY)
    wait_for(lambda: re.search(r"demo-pkg~[a-z-]+: what it lists is recorded", proxy.log_text()) is not None,
             timeout=30, what="the document's listing recorded")
    with proxy.client() as c:
        for _ in range(2):
            assert c.get(origin.base + tarball).headers["x-cache"] == "MISS"
    assert "SHA-512 mismatch" in proxy.log_text()
