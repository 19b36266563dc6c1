"""Hit and miss paths through a real mitmdump with the suite loaded, against a real origin."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from support.proxy import Proxy, wait_for
from support.origin import Behaviour, Origin, make_file
from pkgcache_suite.storage import CacheStore
from pkgcache_suite.policy.cachekey import key_for_url

DEB = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"
INREL = "/debian/dists/stable/InRelease"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_miss_then_hit_stores_browsable_file_and_metadata(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(300_000)
    origin.put(DEB, body)
    url = origin.base + DEB
    with proxy.client() as c:
        r1 = c.get(url)
        r2 = c.get(url)
    assert r1.status_code == r2.status_code == 200
    assert r1.content == r2.content == body
    assert r1.headers["x-cache"] == "MISS" and r2.headers["x-cache"] == "HIT"
    assert origin.count(DEB) == 1
    # browsable host/path layout
    on_disk = proxy.cache_dir / f"127.0.0.1_{origin.port}" / DEB.lstrip("/")
    assert on_disk.read_bytes() == body
    store = CacheStore(proxy.cache_dir)
    entry = store.lookup(key_for_url(url))
    assert entry is not None
    assert entry.sha256 == sha(body) and entry.length == len(body)
    assert entry.url == url and entry.kind == "immutable" and entry.etag and entry.last_modified
    assert r2.headers["etag"] == entry.etag
    store.close()


@pytest.mark.parametrize("memory_max", ["1048576", "0"])
def test_range_head_and_conditionals_on_hits(origin: Origin, start_proxy, memory_max: str) -> None:
    """Answered from the cache both from memory and through the loopback file server."""
    proxy = start_proxy("--set", f"pkgcache_memory_hit_max={memory_max}")
    body = os.urandom(200_000)
    origin.put(DEB, body)
    url = origin.base + DEB
    with proxy.client() as c:
        assert c.get(url).content == body
        r = c.get(url, headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == body[100:200]
        assert r.headers["content-range"] == f"bytes 100-199/{len(body)}"
        r = c.get(url, headers={"Range": "bytes=-50"})
        assert r.status_code == 206 and r.content == body[-50:]
        r = c.get(url, headers={"Range": "bytes=199990-"})
        assert r.status_code == 206 and r.content == body[199990:]
        r = c.get(url, headers={"Range": f"bytes={len(body)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(body)}"
        for bad in ("bytes=abc", "items=1-2", "bytes=5-1", "bytes=1-2,4-5", "bytes=--1"):
            r = c.get(url, headers={"Range": bad})
            assert r.status_code == 200 and r.content == body, bad
        r = c.head(url)
        assert r.status_code == 200 and r.headers["content-length"] == str(len(body)) and r.content == b""
        etag, lm = r.headers["etag"], r.headers["last-modified"]
        assert c.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert c.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        assert c.get(url, headers={"If-Modified-Since": lm}).status_code == 304
        assert c.get(url, headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 200
        # If-Range with a stale validator: whole body
        r = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert r.status_code == 200 and r.content == body
    assert origin.count(DEB) == 1


def test_large_hit_is_streamed_through_file_server(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_memory_hit_max=65536")
    digest = make_file(origin.root / DEB.lstrip("/"), 20 * 1024 * 1024 + 17)
    url = origin.base + DEB
    with proxy.client() as c:
        for _ in range(3):
            h = hashlib.sha256()
            with c.stream("GET", url) as r:
                assert r.status_code == 200
                for chunk in r.iter_bytes():
                    h.update(chunk)
            assert h.hexdigest() == digest
        r = c.get(url, headers={"Range": "bytes=10485760-10485769"})
        assert r.status_code == 206 and len(r.content) == 10
    assert origin.count(DEB) == 1


def test_range_request_on_a_miss_gets_its_slice_and_caches_whole_file(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(100_000)
    origin.put(DEB, body)
    url = origin.base + DEB
    with proxy.client() as c:
        r = c.get(url, headers={"Range": "bytes=1000-1999"})
        assert r.status_code == 206 and r.content == body[1000:2000]
        assert r.headers["content-range"] == f"bytes 1000-1999/{len(body)}"
        r = c.get(url)
        assert r.headers["x-cache"] == "HIT" and r.content == body
    assert origin.count(DEB) == 1
    assert "range" not in origin.log[0].headers


def test_volatile_index_is_revalidated_replaced_and_served_stale(origin: Origin, proxy: Proxy) -> None:
    origin.put(INREL, b"release one\n")
    url = origin.base + INREL
    with proxy.client() as c:
        r = c.get(url)
        assert r.headers["x-cache"] == "MISS" and r.content == b"release one\n"
        r = c.get(url)
        assert r.headers["x-cache"] == "REVALIDATED" and r.content == b"release one\n"
        assert "if-none-match" in origin.log[-1].headers and "if-modified-since" in origin.log[-1].headers
        # the client's own conditional is answered from the cache after revalidation
        r = c.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert r.status_code == 304
        # a changed index replaces the cached one
        p = origin.put(INREL, b"release two\n")
        os.utime(p, (time.time() + 5, time.time() + 5))
        r = c.get(url)
        assert r.headers["x-cache"] == "MISS" and r.content == b"release two\n"
        r = c.get(url)
        assert r.headers["x-cache"] == "REVALIDATED" and r.content == b"release two\n"
        # upstream broken: the cached copy is served, marked stale
        origin.behaviours[INREL] = Behaviour(status=503)
        r = c.get(url)
        assert r.status_code == 200 and r.headers["x-cache"] == "STALE" and r.content == b"release two\n"
        assert "warning" in r.headers


def test_pass_through_and_upstream_errors_are_not_stored(origin: Origin, proxy: Proxy) -> None:
    origin.put("/some/page.html", b"<html>")
    origin.behaviours["/debian/pool/main/x/x_1_all.deb"] = Behaviour(status=500)
    with proxy.client() as c:
        for _ in range(2):
            r = c.get(origin.base + "/some/page.html")
            assert r.status_code == 200 and r.headers["x-cache"] == "MISS"  # every answer says what the cache did
        r = c.get(origin.base + "/debian/pool/main/m/missing_1_all.deb")
        assert r.status_code == 404
        r = c.get(origin.base + "/debian/pool/main/x/x_1_all.deb")
        assert r.status_code == 500
        r = c.get(origin.base + "/debian/pool/main/x/x_1_all.deb")
        assert r.status_code == 500
    assert origin.count("/some/page.html") == 2
    assert origin.count("/debian/pool/main/x/x_1_all.deb") == 2
    files = [p for p in proxy.cache_dir.rglob("*") if p.is_file() and ".pkgcache" not in p.parts]
    assert files == []


def test_by_hash_file_with_wrong_digest_is_not_stored(origin: Origin, proxy: Proxy) -> None:
    good = b"Package: a\n"
    good_path = f"/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{sha(good)}"
    bad_path = f"/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{sha(b'other')}"
    origin.put(good_path, good)
    origin.put(bad_path, good)
    with proxy.client() as c:
        for p in (good_path, bad_path, good_path, bad_path):
            assert c.get(origin.base + p).content == good
    assert origin.count(good_path) == 1
    assert origin.count(bad_path) == 2
    wait_for(lambda: "SHA-256 mismatch" in proxy.log_text(), what="the mismatch in the log")


def test_reserved_host_serves_counters(origin: Origin, proxy: Proxy) -> None:
    origin.put(DEB, b"x" * 1000)
    with proxy.client() as c:
        c.get(origin.base + DEB)
        c.get(origin.base + DEB)
        stats = c.get("http://pkgcache/stats.json").json()
        page = c.get("http://pkgcache/")
    assert stats["total"]["hit"] == 1 and stats["total"]["miss"] == 1
    assert stats["total"]["bytes_from_cache"] == 1000 and stats["total"]["bytes_from_upstream"] == 1000
    assert stats["by_kind"]["immutable"]["hit"] == 1
    assert stats["by_host"]["127.0.0.1"]["miss"] == 1
    assert page.status_code == 200 and "<h1>pkgcache</h1>" in page.text
    assert json.dumps(stats)


def test_first_bytes_reach_client_before_upstream_finishes(origin: Origin, proxy: Proxy) -> None:
    """The origin holds back the second half until the client has the first half: fetch-then-serve would hang."""
    size = 4 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=size // 2)
    origin.behaviours[DEB] = b
    got = 0
    h = hashlib.sha256()
    with proxy.client() as c, c.stream("GET", origin.base + DEB) as r:
        for chunk in r.iter_raw():
            got += len(chunk)
            h.update(chunk)
            if got >= size // 4:
                b.gate.set()
    assert b.gate.is_set() and got == size and h.hexdigest() == digest


def test_memory_does_not_grow_with_body_size(origin: Origin, start_proxy) -> None:
    proxy = start_proxy("--set", "pkgcache_memory_hit_max=65536")
    size = 300 * 1024 * 1024
    make_file(origin.root / DEB.lstrip("/"), size)
    before = proxy.rss_peak_kb()
    with proxy.client() as c:
        for _ in range(2):  # miss, then hit
            n = 0
            with c.stream("GET", origin.base + DEB) as r:
                for chunk in r.iter_raw():
                    n += len(chunk)
            assert n == size
    grown_mb = (proxy.rss_peak_kb() - before) / 1024
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB for a {size >> 20} MB body"


def test_flows_carry_a_marker_and_the_original_url(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """What mitmweb shows: each flow's comment says what the cache did, and streamed hits keep their URL."""
    from mitmproxy import io as mio

    flows_file = tmp_path / "flows"
    proxy = start_proxy("-w", str(flows_file), "--set", "pkgcache_memory_hit_max=0")
    origin.put(DEB, b"d" * 5000)
    origin.put("/index.html", b"page")
    url = origin.base + DEB
    with proxy.client() as c:
        c.get(url)
        c.get(url)
        c.get(origin.base + "/index.html")
    proxy.stop()
    with open(flows_file, "rb") as f:
        flows = list(mio.FlowReader(f).stream())
    assert [fl.request.url for fl in flows] == [url, url, origin.base + "/index.html"]
    assert "MISS" in flows[0].comment and "HIT" in flows[1].comment
    assert "passed through" in flows[2].comment
    assert flows[1].metadata["pkgcache_url"] == url
    # mitmweb's flow list marks what the cache did
    assert [fl.marked for fl in flows] == [":large_blue_circle:", ":green_circle:", ""]


def test_cli_lists_cached_files(origin: Origin, proxy: Proxy) -> None:
    import subprocess

    origin.put(DEB, b"z" * 1234)
    with proxy.client() as c:
        c.get(origin.base + DEB)
    out = subprocess.run(["pkgcache", "--cache-dir", str(proxy.cache_dir), "ls"], capture_output=True,
                         text=True, check=True).stdout
    assert origin.base + DEB in out and "1 entries, 1.2 KiB" in out


def test_options_are_visible_in_mitmweb(origin: Origin, tmp_path: Path) -> None:
    """mitmweb shows the pkgcache options, and a streamed miss in its flow list with its real size."""
    import re
    import shutil
    import socket
    import subprocess
    import sys
    import threading

    from support.proxy import ENTRY, wait_for

    exe = Path(sys.executable).with_name("mitmweb")
    mitmweb = str(exe) if exe.exists() else shutil.which("mitmweb")
    assert mitmweb, "mitmweb is installed with mitmproxy"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        web_port = sock.getsockname()[1]
    (tmp_path / "ds").mkdir(exist_ok=True)
    proc = subprocess.Popen([mitmweb, "-s", str(ENTRY), "--no-web-open-browser", "--listen-host", "127.0.0.1",
                             "--listen-port", "0", "--web-port", str(web_port), "--set", f"pkgcache_dir={tmp_path / 'c'}",
                             "--set", f"pkgcache_datastore={tmp_path / 'ds'}", "--set", "pkgcache_allow_loopback=true",
                             "--set", "pkgcache_allow_ports=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_for(lambda: any("Web server listening at" in ln for ln in lines), timeout=60, what="mitmweb to start")
        url = re.search(r"Web server listening at (http://\S+)", "".join(lines)).group(1)
        query = url.partition("?")[2]  # mitmproxy 12 puts an access token here
        opts_url = f"http://127.0.0.1:{web_port}/options.json" + (f"?{query}" if query else "")
        with httpx.Client(trust_env=False) as c:
            r = c.get(opts_url)
        assert r.status_code == 200, "".join(lines)
        opts = r.json()
        assert opts["pkgcache_dir"]["value"] == str(tmp_path / "c")
        assert {"pkgcache_offline", "pkgcache_conf", "pkgcache_filter"} <= set(opts)
        port = int(re.search(r"HTTP\(S\) proxy listening at 127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        origin.put(DEB, b"s" * 3_000_000)  # larger than pkgcache_memory_hit_max: streamed from upstream
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", trust_env=False) as c:
            assert c.get(origin.base + DEB).headers["x-cache"] == "MISS"
        flows_url = f"http://127.0.0.1:{web_port}/flows" + (f"?{query}" if query else "")

        def listed() -> list:
            with httpx.Client(trust_env=False) as c:
                return [f for f in c.get(flows_url).json() if f["request"]["path"].endswith(".deb")]

        wait_for(lambda: listed() and listed()[0]["response"]["contentLength"], what="the flow in mitmweb")
        flow = listed()[0]
        assert flow["response"]["contentLength"] == 3_000_000  # not 0: the stored body is shown
        assert "MISS" in flow["comment"] and "2.9 MiB" in flow["comment"] and flow["marked"]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("how", ["--cache-dir", "--set"])
def test_pkgcache_serve_starts_mitmdump_with_the_suite(tmp_path: Path, how: str) -> None:
    """From a virtual environment's bin without it on PATH, the cache root named either way."""
    import os
    import subprocess
    import sys
    import threading

    from support.proxy import wait_for

    exe = str(Path(sys.executable).with_name("pkgcache"))
    root = ["--cache-dir", str(tmp_path / "c")] if how == "--cache-dir" else []
    named = ["--set", f"pkgcache_dir={tmp_path / 'c'}"] if how == "--set" else []
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # the mitmdump beside pkgcache is the one used
    (tmp_path / "ds").mkdir(exist_ok=True)
    proc = subprocess.Popen([exe, *root, "serve", "--listen-host", "127.0.0.1", "--listen-port", "0", *named,
                             "--set", f"pkgcache_datastore={tmp_path / 'ds'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: any("pkgcache: ready" in ln for ln in lines), timeout=60, what="the proxy to start")
        assert any(f"cache at {tmp_path / 'c'}" in ln for ln in lines), lines
    finally:
        proc.terminate()
        proc.wait(10)
