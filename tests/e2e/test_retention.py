"""Retention an admin sets: a size limit that evicts least recently used files first (pinned ones never),
and a low-disk watermark below which nothing new is stored."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support.origin import Origin
from support.proxy import wait_for


def _deb(n: int) -> str:
    return f"/debian/pool/main/p/pkg{n}/pkg{n}_1.0_all.deb"


def _cached(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*.deb")}


def test_the_size_limit_evicts_least_recently_used_and_keeps_pins(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_max_size=100K")
    subprocess.run(["pkgcache", "--cache-dir", str(proxy.cache_dir), "pin", "*/pkg0/*"], check=True,
                   capture_output=True)
    for n in range(6):
        origin.put(_deb(n), bytes([n]) * 30_000)
    with proxy.client() as c:
        for n in range(3):
            assert c.get(origin.base + _deb(n)).headers["x-cache"] == "MISS"
            time.sleep(0.05)
        assert c.get(origin.base + _deb(1)).headers["x-cache"] == "HIT"  # pkg1 is now used more recently than 2
        time.sleep(1.5)  # last-use times are written about once a second
        for n in range(3, 6):
            c.get(origin.base + _deb(n))
            time.sleep(1.5)
    wait_for(lambda: sum(p.stat().st_size for p in proxy.cache_dir.rglob("*.deb")) <= 100 * 1024, timeout=20,
             what="the cache to shrink under its limit")
    left = _cached(proxy.cache_dir)
    assert "pkg0_1.0_all.deb" in left  # pinned, although the least recently used
    assert "pkg5_1.0_all.deb" in left  # just stored
    assert "pkg2_1.0_all.deb" not in left  # older use than pkg1: it went first
    assert "removed" in proxy.log_text() and "least recently used" in proxy.log_text()
    with proxy.client() as c:  # an evicted file is simply a miss again
        assert c.get(origin.base + _deb(2)).headers["x-cache"] == "MISS"


def test_below_the_low_disk_watermark_nothing_new_is_stored(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_min_free=1000T")  # more than any disk here has free
    origin.put(_deb(1), b"x" * 20_000)
    with proxy.client() as c:
        for _ in range(2):
            r = c.get(origin.base + _deb(1))
            assert r.status_code == 200 and r.content == b"x" * 20_000 and r.headers["x-cache"] == "MISS"
    assert _cached(proxy.cache_dir) == set() and origin.count(_deb(1)) == 2
    errors = [ln for ln in proxy.lines if "not storing new files" in ln and "low-disk watermark" in ln]
    assert len(errors) == 1, errors  # the error is said once a minute; each request only notes "not stored"


def test_the_reported_size_is_kept_with_the_index_and_an_older_cache_is_counted_once(origin: Origin,
                                                                                     start_proxy) -> None:
    import diskcache

    from pkgcache_suite.storage.totals import KEY

    proxy = start_proxy()
    for n in range(3):
        origin.put(_deb(n), bytes([n]) * (1000 + n))
    with proxy.client() as c:
        for n in range(3):
            c.get(origin.base + _deb(n))
        size = c.get("http://pkgcache/stats.json").json()["maintenance"]["size"]
    assert size == {"files": 3, "bytes": 3003, "counted": True}
    proxy.stop()
    index = diskcache.Cache(str(proxy.cache_dir / ".pkgcache" / "index"))  # as a version without totals left it
    for key in [k for k in index.iterkeys() if isinstance(k, str)]:
        index.set(key, index.get(key))
    index.delete(KEY)
    index.close()
    again = start_proxy(cache_dir=proxy.cache_dir)
    wait_for(lambda: "cache counted: 3 files" in again.log_text(), timeout=30, what="the older cache to be counted")
    with again.client() as c:
        assert c.get("http://pkgcache/stats.json").json()["maintenance"]["size"] == {
            "files": 3, "bytes": 3003, "counted": True}
        origin.put(_deb(9), b"z" * 500)
        c.get(origin.base + _deb(9))
        assert "3.4 KiB" in c.get("http://pkgcache/").text
