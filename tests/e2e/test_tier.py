"""The production tier (`pkgcache serve --workers 2`): what it does, not how fast.

HAProxy and nginx from Debian in front of two real pkgcache workers, a real origin on 127.0.0.1. A
response from the front itself carries nginx's Server header; the front's hit log says what it served.
"""

from __future__ import annotations

import email.utils
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.origin import Origin
from support.proxy import wait_for
from support.tier import served_by_front

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"
INDEX = "/debian/dists/stable/InRelease"


def test_a_miss_is_decided_by_a_worker_and_the_hit_comes_from_the_front(origin: Origin, start_tier) -> None:
    body = os.urandom(300_000)
    origin.put(DEB, body)
    tier = start_tier()
    with tier.client() as c:
        miss, front = served_by_front(tier, lambda: c.get(origin.base + DEB))
        assert miss.status_code == 200 and miss.content == body and miss.headers["x-cache"] == "MISS"
        assert not front
        hit, front = served_by_front(tier, lambda: c.get(origin.base + DEB))
        assert hit.content == body and hit.headers["x-cache"] == "HIT" and front
        # Range, HEAD and conditionals, answered by the front from the published file
        part, front = served_by_front(tier, lambda: c.get(origin.base + DEB, headers={"Range": "bytes=100-199"}))
        assert part.status_code == 206 and part.content == body[100:200] and front
        head, front = served_by_front(tier, lambda: c.head(origin.base + DEB))
        assert head.status_code == 200 and head.headers["content-length"] == str(len(body)) and front
        assert head.headers["x-cache"] == "HIT"
        lm = hit.headers["last-modified"]
        assert email.utils.parsedate_to_datetime(lm) == email.utils.parsedate_to_datetime(
            miss.headers["last-modified"])  # upstream's date, as the workers answer it
        cond, front = served_by_front(tier, lambda: c.get(origin.base + DEB, headers={"If-Modified-Since": lm}))
        assert cond.status_code == 304 and cond.headers["x-cache"] == "HIT" and front
        bad = c.get(origin.base + DEB, headers={"Range": "bytes=999999-"})
        assert bad.status_code == 416
    assert origin.count(DEB) == 1


def test_an_index_is_revalidated_by_a_worker(origin: Origin, start_tier) -> None:
    origin.put(INDEX, b"Origin: test\nSuite: stable\n")
    tier = start_tier()
    with tier.client() as c:
        first = c.get(origin.base + INDEX)
        assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
        again, front = served_by_front(tier, lambda: c.get(origin.base + INDEX))
        assert again.status_code == 200 and again.headers["x-cache"] == "REVALIDATED" and not front, (
            again.status_code, again.headers, again.text[:300], [r.path for r in origin.log], tier.log_text())
    conditional = [r for r in origin.log if r.path == INDEX][-1]
    assert conditional.headers.get("if-modified-since") or conditional.headers.get("if-none-match")
    assert not list((tier.cache_dir / ".pkgcache" / "front").rglob("InRelease"))  # never published


def test_a_host_header_that_disagrees_with_the_url_is_refused_at_the_front(origin: Origin, start_tier) -> None:
    origin.put(DEB, b"h" * 100)
    tier = start_tier()
    with socket.create_connection(("127.0.0.1", tier.port), timeout=20) as s:
        s.sendall(f"GET {origin.base}{DEB} HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 400") and origin.count(DEB) == 0


def test_connect_goes_to_a_worker(origin: Origin, start_tier) -> None:
    origin.put("/plain.txt", b"through the tunnel")
    tier = start_tier()
    with socket.create_connection(("127.0.0.1", tier.port), timeout=20) as s:
        s.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n".encode())
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        s.sendall(f"GET /plain.txt HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"through the tunnel")


def test_client_rules_apply_at_the_front(origin: Origin, start_tier, tmp_path: Path) -> None:
    origin.put(DEB, b"x" * 5000)
    tier = start_tier()
    with tier.client() as c:
        c.get(origin.base + DEB)
        assert served_by_front(tier, lambda: c.get(origin.base + DEB))[1]
    tier.stop()
    hits_before = len(tier.front_hits())
    refused = start_tier("--set", "pkgcache_allow_clients=192.0.2.0/24", cache_dir=tier.cache_dir)
    with refused.client() as c:
        r = c.get(origin.base + DEB)  # published, but this client may not use the proxy at all
        assert r.status_code == 403 and "client address not allowed" in r.text and r.headers["x-cache"] == "MISS"
        assert c.get("http://pkgcache/").status_code == 403
    assert len(refused.front_hits()) == hits_before and origin.count(DEB) == 1
    refused.stop()
    ports = start_tier("--set", "pkgcache_allow_ports=80", cache_dir=tier.cache_dir)
    with ports.client() as c:
        r = c.get(origin.base + DEB)  # the origin's port is not allowed
        assert r.status_code == 403 and "port" in r.text
    assert len(ports.front_hits()) == hits_before


def test_a_dropped_stale_copy_is_not_served_by_the_front(origin: Origin, start_tier) -> None:
    old, new = b"old bytes " * 1000, b"new bytes " * 1200
    origin.put(DEB, old)
    tier = start_tier()
    with tier.client() as c:
        c.get(origin.base + DEB)
        assert served_by_front(tier, lambda: c.get(origin.base + DEB))[1]
    published = next((tier.cache_dir / ".pkgcache" / "front").rglob(Path(DEB).name))
    r = __import__("subprocess").run(["pkgcache", "--cache-dir", str(tier.cache_dir), "verify", "--fix", "delete"],
                                     capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr  # nothing damaged yet
    # the file is taken back (as expire or the stale-copy check do, through the store)
    from pkgcache_suite.storage import CacheStore
    from pkgcache_suite.policy.cachekey import key_for_url

    store = CacheStore(tier.cache_dir)
    store.drop(key_for_url(origin.base + DEB))
    store.close()
    assert not published.exists()
    origin.put(DEB, new)
    with tier.client() as c:
        r, front = served_by_front(tier, lambda: c.get(origin.base + DEB))
        assert r.content == new and r.headers["x-cache"] == "MISS" and not front
        assert c.get(origin.base + DEB).content == new
    assert origin.count(DEB) == 2


def test_the_counters_include_the_fronts_hits(origin: Origin, start_tier) -> None:
    origin.put(DEB, b"c" * 10_000)
    tier = start_tier()
    with tier.client() as c:
        c.get(origin.base + DEB)
        for _ in range(5):
            assert served_by_front(tier, lambda: c.get(origin.base + DEB))[1]

        def totals() -> dict:
            return c.get("http://pkgcache/stats.json").json()["total"]

        # each process adds its counts about once a second: the worker its miss, the supervisor the front's hits
        wait_for(lambda: (totals()["hit"], totals()["miss"]) == (5, 1), timeout=15,
                 what="the front's hits and the worker's miss in the counters")
        t = totals()
        assert t["miss"] == 1 and t["bytes_from_cache"] == 50_000
        metrics = c.get("http://pkgcache/metrics").text
        assert 'pkgcache_requests_total{class="immutable",outcome="hit",repository=""} 5.0' in metrics
    page = httpx.get(f"{tier.url}/", trust_env=False)  # a browser at the tier's own address
    assert page.status_code == 200 and "Hit ratio (requests) 83.3%" in " ".join(
        __import__("re").sub(r"<[^>]+>", " ", page.text).split())


def test_a_worker_killed_under_load_loses_no_retried_request(origin: Origin, start_tier) -> None:
    files = {f"/debian/pool/main/p/p{i}/p{i}_1_all.deb": os.urandom(20_000 + i) for i in range(40)}
    for path, body in files.items():
        origin.put(path, body)
    tier = start_tier()
    pids = tier.worker_pids()
    assert len(pids) == 2

    def fetch(path: str) -> bool:
        for _attempt in range(5):  # a client retries a broken or refused request, as apt does
            try:
                with tier.client() as c:
                    r = c.get(origin.base + path)
                if r.status_code == 200 and r.content == files[path]:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return False

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(fetch, p) for p in list(files) * 3]
        time.sleep(0.3)
        os.kill(pids[0], signal.SIGKILL)
        results = [f.result() for f in futures]
    assert all(results)
    wait_for(lambda: "exited" in tier.log_text() and len(tier.worker_pids()) == 2, timeout=30,
             what="the killed worker to be started again")
    with tier.client() as c:  # and everything is served afterwards
        assert all(c.get(origin.base + p).content == b for p, b in files.items())


@pytest.mark.usefixtures("apt_tools")
def test_a_republished_file_is_dropped_and_never_served_old_by_the_front(origin: Origin, start_tier) -> None:
    """The stale-copy check after an index refresh, with the index and the package fetched back to back."""
    from support.debrepo import ARCH, build_deb, write_indexes

    repo = origin.root / "debian"
    deb = build_deb(repo, "gamma", "0.3", 20_000)
    write_indexes(repo)
    packages = f"/debian/dists/stable/main/binary-{ARCH}/Packages"
    path = f"/debian/{deb.relative_to(repo)}"
    tier = start_tier()
    with tier.client() as c:
        assert c.get(origin.base + packages).status_code == 200
        first = c.get(origin.base + path).content
        # the miss is admitted and published just after its client has the last byte (the front fetched
        # it): the front serves it once that is done, which under load may be a request or two later
        wait_for(lambda: served_by_front(tier, lambda: c.get(origin.base + path))[1], timeout=30,
                 what="the front to serve the published copy")
        deb = build_deb(repo, "gamma", "0.3", 30_000)  # same name and version, other bytes
        write_indexes(repo)
        time.sleep(1.1)  # a Last-Modified one second later
        assert c.get(origin.base + packages).headers["x-cache"] == "MISS"  # the refreshed index, stored
        got = c.get(origin.base + path)  # at once, as apt does
        assert got.content == deb.read_bytes() != first
    assert origin.count(path) == 2, [r.path for r in origin.log]


def test_the_generated_configurations_are_valid(tmp_path: Path) -> None:
    """Checked by the engines themselves, with the access rules and several workers in."""
    import ipaddress
    import subprocess

    from pkgcache_suite.tier.config import Tier, haproxy_cfg, nginx_conf

    (tmp_path / "front").mkdir()
    t = Tier(listen_host="127.0.0.1", listen_port=18080, workers=[18081, 18082, 18083], nginx_port=18084,
             published=tmp_path / "front", run_dir=tmp_path, allow_clients=[ipaddress.ip_network("192.0.2.0/24")],
             allow_ports={80, 443})
    (tmp_path / "haproxy.cfg").write_text(haproxy_cfg(t))
    (tmp_path / "nginx.conf").write_text(nginx_conf(t))
    t.make_dirs()
    r = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_offline_every_miss_is_answered_and_recorded_by_the_tier(origin: Origin, start_tier, tmp_path: Path) -> None:
    """Both workers answer misses locally; their wanted lists meet in one file, none lost."""
    import json

    ds = tmp_path / "stick"
    tier = start_tier("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}")
    paths = [f"/debian/pool/main/o/off{i}/off{i}_1_all.deb" for i in range(12)]
    with tier.client() as c:
        for p in paths:
            r = c.get(origin.base + p)
            assert r.status_code == 404 and r.headers["x-cache"] == "MISS" and "offline" in r.text
    assert origin.log == []  # never asked upstream

    def wanted() -> set[str]:
        try:
            return {w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]}
        except (OSError, ValueError, KeyError):
            return set()

    wait_for(lambda: wanted() == {origin.base + p for p in paths}, timeout=20,
             what="every worker's offline misses in the one wanted list")
    # a statement of wanted packages through the front lands in the same list, with the client's address
    base = "http://mirror.example/debian/dists/stable/"
    targets = (f"URI: {base}main/binary-amd64/Packages\nBase-URI: {base}\n"
               "Repo-URI: http://mirror.example/debian/\nRelease: stable\nComponent: main\nArchitecture: amd64\n"
               "Identifier: Packages\n\n")
    with tier.client() as c:
        r = c.post("http://pkgcache/want", data={"packages": "hello"}, files={"targets": ("t", targets.encode())})
    assert r.status_code == 200 and "safe to remove" in r.text, r.text
    (stated,) = json.loads((ds / "wanted.json").read_text())["requests"]
    assert stated["packages"] == ["hello"] and stated["client"] == "127.0.0.1"
    assert wanted() == {origin.base + p for p in paths}  # nothing lost on the way
