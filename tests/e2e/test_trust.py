"""Trust: no open relay, no cache poisoning, nothing short or wrong ever served as a hit.

Each test plays a hostile client or a faulty upstream against a real mitmdump
with the suite loaded and a real origin on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import diskcache
import httpx
import pytest

from support.proxy import Proxy, fetch_digest, wait_for
from support.rawhttp import get, raw
from support.origin import Behaviour, Origin, make_file

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


# -- 1. no open relay through the report host ------------------------------------------------


def test_report_host_header_opens_no_relay_and_skips_no_access_control(origin: Origin, start_proxy) -> None:
    origin.put("/secret", b"internal service")
    proxy = start_proxy("--set", "pkgcache_allow_ports=80,443")
    status, _, body = get(proxy, f"{origin.base}/secret", host="pkgcache")
    assert status == 403 and b"not allowed" in body
    status, _, _ = raw(proxy, f"POST {origin.base}/secret HTTP/1.1\r\nHost: pkgcache\r\nContent-Length: 0\r\n"
                              f"Connection: close\r\n\r\n".encode())
    assert status == 403
    assert origin.count("/secret") == 0 and origin.count("/secret", "POST") == 0
    proxy.stop()
    # a client outside pkgcache_allow_clients reaches neither the report nor anything else
    outsider = start_proxy("--set", "pkgcache_allow_clients=192.0.2.0/24", cache_dir=proxy.cache_dir.parent / "c2")
    for url, host in [("http://pkgcache/", "pkgcache"), ("http://pkgcache/stats.json", "pkgcache"),
                      (f"{origin.base}/secret", "pkgcache")]:
        status, _, body = get(outsider, url, host=host)
        assert status == 403 and b"client address not allowed" in body, (url, status, body)
    status, _, _ = raw(outsider, b"POST http://pkgcache/admin/reset-stats HTTP/1.1\r\nHost: pkgcache\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert status == 403
    assert origin.count("/secret") == 0


# -- 2. no cache poisoning through Host ---------------------------------------------------------


def test_host_header_cannot_plant_a_body_under_another_name(tmp_path: Path, origin: Origin, proxy: Proxy) -> None:
    (tmp_path / "evil").mkdir()
    evil = Origin(tmp_path / "evil").start()
    try:
        origin.put(DEB, b"the real package")
        evil.put(DEB, b"PLANTED")
        # the target is the evil origin's address; the Host header names the real mirror
        status, _, body = get(proxy, f"http://127.0.0.1:{evil.port}{DEB}", host=f"localhost:{origin.port}")
        assert status == 200 and body == b"PLANTED"  # the client gets what it asked the evil origin for ...
        with proxy.client() as c:  # ... and every other client gets the real mirror's file
            r = c.get(f"http://localhost:{origin.port}{DEB}")
        assert r.content == b"the real package" and r.headers["x-cache"] == "MISS"
        assert not (proxy.cache_dir / f"localhost_{origin.port}" / DEB.lstrip("/")).read_bytes() == b"PLANTED"
        assert (proxy.cache_dir / f"127.0.0.1_{evil.port}" / DEB.lstrip("/")).read_bytes() == b"PLANTED"
        wait_for(lambda: "disagrees with the request target" in proxy.log_text(), what="the disagreement logged")
    finally:
        evil.stop()


def test_upstream_sees_the_target_not_the_disagreeing_host(origin: Origin, proxy: Proxy) -> None:
    origin.put(DEB, b"x")
    status, _, _ = get(proxy, origin.base + DEB, host="mirror.example")
    assert status == 200
    assert origin.log[-1].headers["host"] == f"127.0.0.1:{origin.port}"


# -- 3. a close-delimited short body is never committed -------------------------------------------


def test_close_delimited_short_body_is_passed_on_but_not_stored(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(300_000)
    origin.put(DEB, body)
    origin.behaviours[DEB] = Behaviour(close_delimited=True, truncate_to=100_000)
    status, _, got = get(proxy, origin.base + DEB)
    assert status == 200 and len(got) == 100_000  # the client sees what upstream sent
    del origin.behaviours[DEB]
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.headers["x-cache"] == "MISS" and r.content == body
    wait_for(lambda: "ends when the connection closes" in proxy.log_text(), what="why it was not stored")


def test_close_delimited_body_is_stored_when_an_index_confirms_it(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(50_000)
    origin.put("/debian/" + "pool/main/h/hello/hello_1.0_amd64.deb", body)
    sha = hashlib.sha256(body).hexdigest()
    origin.put("/debian/dists/stable/main/binary-amd64/Packages",
               f"Package: hello\nVersion: 1.0\nFilename: pool/main/h/hello/hello_1.0_amd64.deb\n"
               f"Size: {len(body)}\nSHA256: {sha}\n\n".encode())
    with proxy.client() as c:
        c.get(origin.base + "/debian/dists/stable/main/binary-amd64/Packages")
    key = f"127.0.0.1_{origin.port}{DEB}"
    refs = diskcache.Cache(str(proxy.cache_dir / ".pkgcache" / "refs"))
    wait_for(lambda: refs.get(key) is not None, what="the index's references recorded")
    origin.behaviours[DEB] = Behaviour(close_delimited=True, truncate_to=20_000)
    assert len(get(proxy, origin.base + DEB)[2]) == 20_000
    origin.behaviours[DEB] = Behaviour(close_delimited=True)
    assert get(proxy, origin.base + DEB)[2] == body
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.headers["x-cache"] == "HIT" and r.content == body
    assert origin.count(DEB) == 2


def test_close_delimited_by_hash_file_is_stored_after_its_digest_checks(origin: Origin, proxy: Proxy) -> None:
    body = b"Package: x\n" * 1000
    path = f"/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{hashlib.sha256(body).hexdigest()}"
    origin.put(path, body)
    origin.behaviours[path] = Behaviour(close_delimited=True)
    assert get(proxy, origin.base + path)[2] == body
    with proxy.client() as c:
        assert c.get(origin.base + path).headers["x-cache"] == "HIT"


# -- 4. bounded parsing of client input ---------------------------------------------------------------


def test_overlong_client_input_gets_a_400_family_answer_and_nothing_breaks(origin: Origin, proxy: Proxy) -> None:
    make_file(origin.root / DEB.lstrip("/"), 3 * 1024 * 1024)
    for extra, want in [
        (f"Range: bytes={'9' * 5000}-\r\n", 400),
        (f"Range: bytes=0-{'1' * 200}\r\n", 400),
        (f"If-Range: {'x' * 400}\r\nRange: bytes=0-1\r\n", 400),
        (f"If-Modified-Since: {'Mon, ' * 200}\r\n", 400),
        ("If-None-Match: " + '"a",' * 1500 + "\r\n", 400),
        (f"X-Filler: {'a' * 9000}\r\n", 431),
        ("".join(f"X-H{i}: v\r\n" for i in range(250)), 431),
    ]:
        status, _, body = get(proxy, origin.base + DEB, extra=extra)
        assert status == want, (extra[:40], status, body[:200])
    status, _, _ = get(proxy, origin.base + "/" + "a" * 9000)
    assert status == 414
    assert origin.count(DEB) == 0
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.status_code == 200 and len(r.content) == 3 * 1024 * 1024


# -- 5. no links followed in the private area -----------------------------------------------------------


def test_links_planted_in_the_private_area_are_never_followed(origin: Origin, proxy: Proxy, tmp_path: Path) -> None:
    from pkgcache_suite.storage import private_id as _id
    from pkgcache_suite.policy.cachekey import key_for_url

    origin.put(DEB, b"package")
    url = origin.base + DEB
    ident = _id(key_for_url(url))
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"precious")
    private = proxy.cache_dir / ".pkgcache"
    links = [private / "partial" / f"{ident}.part", private / "partial" / f"{ident}.json",
             private / "partial" / f"{ident}.json.tmp", private / "locks" / f"{ident}.lock"]
    for i, link in enumerate(links):
        link.symlink_to(victim if i % 2 else outside / f"new-{i}")
    with proxy.client() as c:
        assert c.get(url).content == b"package"
        assert c.get(url).headers["x-cache"] == "HIT"
    assert victim.read_bytes() == b"precious"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


# -- 6. stalled upstreams are cut ----------------------------------------------------------------------------


def test_upstream_stalling_after_headers_is_cut_for_leader_and_followers(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_idle_timeout=2")
    size = 2 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    origin.behaviours[DEB] = Behaviour(stall_after=256 * 1024, stall=40)

    def fetch() -> tuple[bool, int]:
        n = 0
        try:
            with proxy.client(timeout=30) as c, c.stream("GET", origin.base + DEB) as r:
                for chunk in r.iter_raw():
                    n += len(chunk)
        except (httpx.HTTPError, httpx.StreamError):
            return False, n
        return n == size, n

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fetch(), range(4)))
    assert all(ok is False for ok, _ in results), results  # broken transfers, not client timeouts
    assert not list(proxy.cache_dir.rglob("*.deb"))
    wait_for(lambda: "upstream sent nothing for 2 s" in proxy.log_text(), what="the watchdog's log line")
    del origin.behaviours[DEB]
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert hashlib.sha256(r.content).hexdigest() == digest


def test_upstream_stalling_before_headers_is_cut(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_idle_timeout=2")
    origin.put(DEB, b"slow")
    origin.behaviours[DEB] = Behaviour(delay=40)
    with proxy.client(timeout=30) as c:
        r = c.get(origin.base + DEB)  # would take 40 s if nothing cut it; the client gives up at 30
    assert r.status_code >= 500
    assert not list(proxy.cache_dir.rglob("*.deb"))


# -- 7. a full disk does not break followers -------------------------------------------------------------------


def test_full_disk_followers_get_whole_bodies(origin: Origin, start_proxy) -> None:
    import resource
    import signal

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    proxy = start_proxy(preexec_fn=limit_file_size)
    size = 4 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=512 * 1024)
    origin.behaviours[DEB] = b

    def fetch() -> tuple[int, str]:
        h = hashlib.sha256()
        n = 0
        with proxy.client() as c, c.stream("GET", origin.base + DEB) as r:
            for chunk in r.iter_raw():
                h.update(chunk)
                n += len(chunk)
        return n, h.hexdigest()

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(fetch) for _ in range(5)]
        wait_for(lambda: origin.count(DEB) >= 1, what="the upstream request")
        wait_for(lambda: _stats(proxy)["total"]["coalesced"] == 4, timeout=30, what="4 followers")
        b.gate.set()
        results = [f.result() for f in futures]
    assert results == [(size, digest)] * 5
    assert origin.count(DEB) == 1
    assert not list(proxy.cache_dir.rglob("*.deb"))


def _stats(proxy: Proxy) -> dict:
    with proxy.client() as c:
        return c.get("http://pkgcache/stats.json").json()


# -- 8. a dead leader's partial file is never followed ---------------------------------------------------------


def test_dead_leaders_partial_is_not_followed_by_another_process(origin: Origin, start_proxy, tmp_path: Path) -> None:
    import signal

    cache = tmp_path / "shared"
    size = 3 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=1024 * 1024)
    origin.behaviours[DEB] = b
    dead = start_proxy(cache_dir=cache)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: get(dead, origin.base + DEB))
        wait_for(lambda: any(p.name.endswith(".part") and p.stat().st_size >= 1024 * 1024
                             for p in (cache / ".pkgcache" / "partial").iterdir()), what="a partial body")
        dead.proc.send_signal(signal.SIGKILL)
        dead.proc.wait()
        b.gate.set()
    # the next leader waits a second for upstream's headers; a follower in another process arrives meanwhile
    origin.behaviours[DEB] = Behaviour(delay=1.0)
    p1, p2 = start_proxy(cache_dir=cache), start_proxy(cache_dir=cache)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(fetch_digest, p1, origin.base + DEB)
        time.sleep(0.3)
        rest = [pool.submit(fetch_digest, p2, origin.base + DEB) for _ in range(3)]
        results = [first.result()] + [f.result() for f in rest]
    assert results == [(200, digest, size)] * 4




# -- 9. leftovers are swept and the tree reconciled with the index -----------------------------------------------


@pytest.mark.parametrize("ended", ["killed", "stopped"])
def test_leftovers_are_swept_and_unindexed_bodies_never_served(origin: Origin, start_proxy, tmp_path: Path,
                                                              ended: str) -> None:
    """killed: the proxy died mid-run, so the next start checks the tree against the index (in the background)
    and removes the body nobody vouches for.  stopped: a clean stop, so the next start walks nothing (its cost
    does not grow with the cache), and the planted body is still never served: it is a miss, overwritten."""
    cache = tmp_path / "cache"
    first = start_proxy(cache_dir=cache)
    running = cache / ".pkgcache" / "running"
    wait_for(lambda: running.is_dir() and sorted(os.listdir(running))[:1] not in ([], [".unchecked"]), timeout=30,
             what="the first start's check of the new cache")
    if ended == "killed":
        first.proc.kill()
        first.proc.wait()
    first.stop()
    partial = cache / ".pkgcache" / "partial"
    old = time.time() - 3600
    for name in ("abc.json.tmp", "def.part", "def.json", ".x.json.1.tmp"):
        (partial / name).write_bytes(b"")
        os.utime(partial / name, (old, old))
    planted = cache / f"127.0.0.1_{origin.port}" / DEB.lstrip("/")
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"never indexed")
    origin.put(DEB, b"the real one")
    proxy = start_proxy(cache_dir=cache)
    wait_for(lambda: "leftovers of interrupted downloads" in proxy.log_text(), what="the sweep")
    assert sorted(os.listdir(partial)) == []
    if ended == "killed":
        wait_for(lambda: not planted.exists(), what="the unindexed body removed")
        assert "1 process(es) serving this cache ended without closing it" in proxy.log_text()
        wait_for(lambda: "'removed': 1" in proxy.log_text(), what="the check's counts logged")
    else:
        time.sleep(1)
        assert planted.exists() and "checked against its index" not in proxy.log_text()
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.content == b"the real one" and r.headers["x-cache"] == "MISS"
    proxy.stop()
    assert os.listdir(running) == [], "a clean stop leaves no registration"


# -- 10. implausible package bodies are not stored ----------------------------------------------------------------


def test_captive_portal_pages_are_never_stored_as_packages(origin: Origin, proxy: Proxy) -> None:
    origin.put(DEB, b"real")
    for behaviour in (Behaviour(html=True), Behaviour(html_body_as="application/octet-stream")):
        origin.behaviours[DEB] = behaviour
        with proxy.client() as c:
            r = c.get(origin.base + DEB)
            assert r.status_code == 200 and b"Wi-Fi login" in r.content
    del origin.behaviours[DEB]
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.content == b"real" and r.headers["x-cache"] == "MISS"
    assert origin.count(DEB) == 3
    wait_for(lambda: "HTML page" in proxy.log_text(), what="the reason logged")


def test_package_whose_size_or_digest_disagrees_with_the_index_is_not_stored(origin: Origin, proxy: Proxy) -> None:
    good = b"good package bytes"
    origin.put("/debian/dists/stable/main/binary-amd64/Packages",
               f"Package: hello\nFilename: pool/main/h/hello/hello_1.0_amd64.deb\nSize: {len(good)}\n"
               f"SHA256: {hashlib.sha256(good).hexdigest()}\n\n".encode())
    with proxy.client() as c:
        c.get(origin.base + "/debian/dists/stable/main/binary-amd64/Packages")
    refs = diskcache.Cache(str(proxy.cache_dir / ".pkgcache" / "refs"))
    wait_for(lambda: refs.get(f"127.0.0.1_{origin.port}{DEB}") is not None, what="references recorded")
    for wrong in (b"good package bytez", b"a different size"):
        origin.put(DEB, wrong)
        with proxy.client() as c:
            assert c.get(origin.base + DEB).content == wrong
            assert c.get(origin.base + DEB).headers["x-cache"] == "MISS"
    origin.put(DEB, good)
    with proxy.client() as c:
        c.get(origin.base + DEB)
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"


# -- 11. loopback and link-local destinations refused by default -----------------------------------------------------


def test_loopback_and_link_local_destinations_are_refused_by_default(origin: Origin, start_proxy) -> None:
    origin.put("/admin-ui", b"the proxy host's own service")
    proxy = start_proxy("--set", "pkgcache_allow_loopback=false")
    for url in (f"{origin.base}/admin-ui", f"http://localhost:{origin.port}/admin-ui",
                f"http://[::1]:{origin.port}/admin-ui", "http://169.254.169.254/latest/meta-data/",
                f"http://0.0.0.0:{origin.port}/admin-ui", f"http://[::ffff:127.0.0.1]:{origin.port}/admin-ui"):
        status, _, body = get(proxy, url)
        assert status == 403 and b"loopback or link-local" in body, (url, status, body)
    status, _, _ = raw(proxy, f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n"
                       .encode())
    assert status == 403
    assert origin.count("/admin-ui") == 0
    with proxy.client() as c:  # the report is answered inside the proxy: not affected
        assert c.get("http://pkgcache/stats.json").status_code == 200


# -- the rest of the faulty upstream's repertoire ----------------------------------------------------------------


def test_wrong_lengths_and_redirects_are_passed_on_and_never_stored(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(200_000)
    origin.put(DEB, body)
    origin.put("/elsewhere.deb", b"moved")
    for behaviour in (Behaviour(content_length=300_000), Behaviour(truncate_to=150_000),
                      Behaviour(redirect=origin.base + "/elsewhere.deb")):
        origin.behaviours[DEB] = behaviour
        try:
            with proxy.client() as c:
                r = c.get(origin.base + DEB)
            assert r.status_code == 302 or len(r.content) < len(body)
        except httpx.HTTPError:
            pass  # a broken transfer: what a short body must look like
        assert not (proxy.cache_dir / f"127.0.0.1_{origin.port}" / DEB.lstrip("/")).exists()
    del origin.behaviours[DEB]
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
        assert r.content == body and r.headers["x-cache"] == "MISS"
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"
