"""Single flight across clients and processes, and failures that must lose nothing."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.proxy import Proxy, fetch_digest, wait_for
from support.origin import Behaviour, Origin, make_file

DEB = "/debian/pool/main/b/big/big_1.0_amd64.deb"




def _coalesced(*proxies: Proxy) -> int:
    n = 0
    for p in proxies:
        with p.client() as c:
            n += c.get("http://pkgcache/stats.json").json()["total"]["coalesced"]
    return n


def test_16_concurrent_cold_clients_make_one_upstream_request(origin: Origin, proxy: Proxy) -> None:
    size = 8 * 1024 * 1024 + 3
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=1024 * 1024)  # hold the body until every client has asked
    origin.behaviours[DEB] = b
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(fetch_digest, proxy, origin.base + DEB) for _ in range(16)]
        wait_for(lambda: origin.count(DEB) >= 1, what="the upstream request")
        # give every client time to arrive while the leader's download is held open
        wait_for(lambda: _coalesced(proxy) == 15, timeout=30, what="15 followers at the proxy")
        b.gate.set()
        results = [f.result() for f in futures]
    assert origin.count(DEB) == 1
    assert all(r == (200, digest, size) for r in results), results


def test_two_processes_share_one_cache_and_one_download(origin: Origin, start_proxy, tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    p1 = start_proxy(cache_dir=cache)
    p2 = start_proxy(cache_dir=cache)
    size = 6 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=512 * 1024)
    origin.behaviours[DEB] = b
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(fetch_digest, p, origin.base + DEB) for p in (p1, p2) * 4]
        wait_for(lambda: origin.count(DEB) >= 1, what="the upstream request")
        # the counters are shared by every process on one cache root: each reports the whole tier
        wait_for(lambda: _coalesced(p1) == 7, timeout=30, what="7 followers at the proxies")
        b.gate.set()
        results = [f.result() for f in futures]
    assert origin.count(DEB) == 1
    assert all(r == (200, digest, size) for r in results)
    # and each process serves the other's committed file
    with p2.client() as c:
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"
    wait_for(lambda: _coalesced(p2) == 7, timeout=10, what="the other process to report the same total")


def test_upstream_reset_mid_body_breaks_transfer_commits_nothing_and_retries(origin: Origin, proxy: Proxy) -> None:
    body = os.urandom(2 * 1024 * 1024)
    origin.put(DEB, body)
    origin.behaviours[DEB] = Behaviour(reset_after=700_000)
    curl = ["curl", "-sS", "-x", proxy.url, "-o", "/dev/null", "-w", "%{size_download}", origin.base + DEB]
    r = subprocess.run(curl, capture_output=True, text=True)
    assert r.returncode != 0, "a truncated body must not look like a clean transfer"
    assert int(r.stdout or 0) < len(body)
    files = [p for p in proxy.cache_dir.rglob("*.deb")]
    assert files == []
    assert list((proxy.cache_dir / ".pkgcache" / "partial").iterdir()) == []
    del origin.behaviours[DEB]
    with proxy.client() as c:
        r2 = c.get(origin.base + DEB)
        assert r2.content == body and r2.headers["x-cache"] == "MISS"
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"
    assert origin.count(DEB) == 2


def test_followers_of_a_failed_download_see_a_broken_transfer(origin: Origin, proxy: Proxy) -> None:
    size = 4 * 1024 * 1024
    make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=1024 * 1024, reset_at_gate=True)
    origin.behaviours[DEB] = b

    def fetch() -> tuple[bool, int]:
        n = 0
        try:
            with proxy.client() as c, c.stream("GET", origin.base + DEB) as r:
                for chunk in r.iter_raw():
                    n += len(chunk)
        except (httpx.HTTPError, httpx.StreamError):
            return False, n
        return True, n

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(fetch) for _ in range(4)]
        wait_for(lambda: _coalesced(proxy) == 3, timeout=30, what="3 followers")
        b.gate.set()  # the held-open upstream connection now dies instead of finishing
        results = [f.result() for f in futures]
    assert all(ok is False for ok, _ in results), results
    assert not list(proxy.cache_dir.rglob("*.deb"))


@pytest.mark.parametrize(
    "raw_path",
    [
        "/debian/../../../etc/passwd.deb",
        "/debian/%2e%2e/%2e%2e/etc/passwd.deb",
        "/debian/..%2f..%2fetc/passwd.deb",
        "/debian/pool/%00/x.deb",
        "/debian/pool/.pkgcache/index/x.deb",
    ],
)
def test_hostile_paths_are_refused_with_400(origin: Origin, proxy: Proxy, raw_path: str) -> None:
    r = subprocess.run(
        ["curl", "-sS", "--path-as-is", "-x", proxy.url, "-o", "-", "-w", "\n%{http_code}", origin.base + raw_path],
        capture_output=True, text=True,
    )
    body, _, code = r.stdout.rpartition("\n")
    assert code == "400", (code, body)
    assert "unsafe" in body
    assert origin.log == []
    assert not (proxy.cache_dir.parent / "etc").exists()


def test_symlink_planted_in_cache_is_never_followed(origin: Origin, proxy: Proxy, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "x_1_all.deb").write_bytes(b"SECRET")
    origin.put("/debian/pool/x_1_all.deb", b"real package")
    url = origin.base + "/debian/pool/x_1_all.deb"
    with proxy.client() as c:
        assert c.get(url).content == b"real package"
    host_dir = proxy.cache_dir / f"127.0.0.1_{origin.port}" / "debian"
    shutil.rmtree(host_dir / "pool")
    (host_dir / "pool").symlink_to(secret)  # a directory symlink pointing out of the cache
    with proxy.client() as c:
        r = c.get(url)
    assert r.content == b"real package"
    assert (secret / "x_1_all.deb").read_bytes() == b"SECRET"


def test_bad_options_fail_at_start(tmp_path: Path) -> None:
    from support.proxy import ENTRY, mitmdump

    bad_filter = tmp_path / "filter"
    bad_filter.write_text("ok\n(unclosed\n")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for args, needle in [
        (["--set", f"pkgcache_filter={bad_filter}"], "bad regular expression"),
        (["--set", f"pkgcache_filter={tmp_path / 'nope'}"], "not a readable file"),
        (["--set", f"pkgcache_dir={not_a_dir}"], "not a directory"),
        (["--set", "pkgcache_memory_hit_max=-1"], "pkgcache_memory_hit_max"),
    ]:
        if "pkgcache_dir" not in args[1]:
            args = ["--set", f"pkgcache_dir={tmp_path / 'c'}", *args]
        r = subprocess.run(
            [mitmdump(), "-s", str(ENTRY), "--listen-host", "127.0.0.1", "--listen-port", "0", *args],
            capture_output=True, text=True, timeout=30,
        )
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert needle in out, out


def test_filter_file_overrides_classification(origin: Origin, start_proxy, tmp_path: Path) -> None:
    f = tmp_path / "filter"
    f.write_text("# comment\n/private/\nimmutable /custom/thing\\.bin$\n")
    proxy = start_proxy("--set", f"pkgcache_filter={f}")
    origin.put("/private/pool/a_1_all.deb", b"a")
    origin.put("/custom/thing.bin", b"b")
    with proxy.client() as c:
        for _ in range(2):
            c.get(origin.base + "/private/pool/a_1_all.deb")
            c.get(origin.base + "/custom/thing.bin")
    assert origin.count("/private/pool/a_1_all.deb") == 2
    assert origin.count("/custom/thing.bin") == 1


def test_full_disk_degrades_to_plain_proxying(origin: Origin, start_proxy) -> None:
    """A real write failure: the proxy's file-size limit (RLIMIT_FSIZE) makes writes past 1 MiB fail."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))

    proxy = start_proxy(preexec_fn=limit)
    body = os.urandom(3 * 1024 * 1024)
    origin.put(DEB, body)
    with proxy.client() as c:
        for _ in range(2):
            r = c.get(origin.base + DEB)
            assert r.status_code == 200 and r.content == body
    assert origin.count(DEB) == 2
    wait_for(lambda: "write failed after" in proxy.log_text(), what="the write failure in the log")
    assert not list(proxy.cache_dir.rglob("*.deb"))
    assert list((proxy.cache_dir / ".pkgcache" / "partial").glob("*.part")) == []


def test_malformed_urls_and_headers_get_clear_answers(origin: Origin, proxy: Proxy) -> None:
    body = b"package body"
    origin.put(DEB, body)
    url = origin.base + DEB
    with proxy.client() as c:
        assert c.get(url).content == body
        # nonsense validators and ranges are ignored or refused, never crash the hook
        for headers, status in [
            ({"If-Modified-Since": "not a date"}, 200),
            ({"If-None-Match": '"unterminated'}, 200),
            ({"If-Range": "garbage", "Range": "bytes=0-1"}, 200),
            ({"Range": "bytes=99999999999999999999999-"}, 416),
            ({"Range": "bytes=0-99999999999999999999999"}, 206),
            ({"Range": "bytes=\u00e9-1".encode()}, 200),
        ]:
            r = c.get(url, headers=headers)
            assert r.status_code == status, (headers, r.status_code)
    # a path that is not valid UTF-8 once decoded cannot name a file: 400 with the reason
    r = subprocess.run(["curl", "-sS", "--path-as-is", "-x", proxy.url, "-o", "-", "-w", "\n%{http_code}",
                        origin.base + "/debian/pool/%ff%fe.deb"], capture_output=True, text=True)
    body_text, _, code = r.stdout.rpartition("\n")
    assert code == "400" and "unsafe" in body_text
    # a request line mitmproxy cannot parse is answered by mitmproxy itself, and the proxy keeps serving
    import socket

    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.sendall(b"GET not-a-url HTTP/1.1\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with proxy.client() as c:
        assert c.get(url).headers["x-cache"] == "HIT"


def test_followers_finish_when_the_leading_client_disconnects(origin: Origin, proxy: Proxy) -> None:
    import socket

    size = 4 * 1024 * 1024
    digest = make_file(origin.root / DEB.lstrip("/"), size)
    b = Behaviour(gate_at=1024 * 1024)
    origin.behaviours[DEB] = b
    # the leader: a raw client that reads a little of the body and hangs up
    leader = socket.create_connection(("127.0.0.1", proxy.port))
    leader.sendall(f"GET {origin.base}{DEB} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n".encode())
    got = b""
    while len(got) < 200_000:
        got += leader.recv(65536)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(fetch_digest, proxy, origin.base + DEB) for _ in range(3)]
        wait_for(lambda: _coalesced(proxy) == 3, timeout=30, what="3 followers")
        leader.close()
        wait_for(lambda: "finishing the download" in proxy.log_text(), timeout=30, what="the continuation")
        b.gate.set()
        results = [f.result() for f in futures]
    assert all(r == (200, digest, size) for r in results), results
    ranged = [r for r in origin.log if r.path == DEB and "range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers.get("if-range")
    with proxy.client() as c:
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"


def test_a_slow_index_refresh_makes_no_client_wait_and_one_refresh_serves_all(origin: Origin, proxy: Proxy) -> None:
    """50 clients ask for a cached index while its refresh is held upstream: one request goes upstream, and
    the 49 others are answered from the cached copy without waiting for it; the refresh then serves all."""
    index = "/debian/dists/stable/main/binary-amd64/Packages"
    origin.put(index, b"Package: old\n" * 1000)
    with proxy.client() as c:
        assert c.get(origin.base + index).headers["x-cache"] == "MISS"
    origin.put(index, b"Package: new\n" * 1000)
    held = Behaviour(gate_at=10)  # the refresh's body stops after 10 bytes until the test lets it go
    origin.behaviours[index] = held

    def ask() -> tuple[str, bytes]:
        with proxy.client() as c:
            r = c.get(origin.base + index)
            return r.headers["x-cache"], r.content

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(ask) for _ in range(50)]
        wait_for(lambda: sum(f.done() for f in futures) == 49, timeout=60,
                 what="49 clients answered while the refresh is held")
        assert not held.gate.is_set()
        done = [f.result() for f in futures if f.done()]
        held.gate.set()
        results = [f.result() for f in futures]
    assert all(x == "HIT" and body.startswith(b"Package: old") for x, body in done)
    assert sum(body.startswith(b"Package: new") for _, body in results) == 1  # the one that refreshed it
    assert origin.count(index) == 2  # the first download and one refresh
    with proxy.client() as c:
        assert c.get(origin.base + index).content.startswith(b"Package: new")  # the refresh serves all after


def test_stale_while_revalidate_answers_every_client_at_once(origin: Origin, start_proxy) -> None:
    """pkgcache_index_fresh: within it, even the client whose request starts the refresh is answered from the
    cached copy at once; one refresh runs in the background, and its answer serves the requests after it."""
    proxy = start_proxy("--set", "pkgcache_index_fresh=600")
    index = "/debian/dists/stable/main/binary-amd64/Packages"
    origin.put(index, b"Package: old\n" * 1000)
    with proxy.client() as c:
        assert c.get(origin.base + index).headers["x-cache"] == "MISS"
    origin.put(index, b"Package: new\n" * 1000)
    held = Behaviour(gate_at=10)
    origin.behaviours[index] = held

    def ask() -> tuple[str, bytes]:
        with proxy.client() as c:
            r = c.get(origin.base + index)
            return r.headers["x-cache"], r.content

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: ask(), range(50)))  # all answered while the refresh is held
    assert all(x == "HIT" and body.startswith(b"Package: old") for x, body in results)
    wait_for(lambda: origin.count(index) == 2, what="the one background refresh")
    assert ask()[0] == "HIT" and origin.count(index) == 2  # one refresh at a time, never one per client
    held.gate.set()
    wait_for(lambda: ask()[1].startswith(b"Package: new"), timeout=30, what="the refreshed copy served")
