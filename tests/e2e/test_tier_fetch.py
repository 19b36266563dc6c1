"""Misses the tier's nginx fetches and stores for a worker: what the client gets and what is stored.

A worker leading a download of a package file hands it to nginx (X-Accel-Redirect); nginx logs one line per
such fetch (front-fetch.log), which is how these tests tell that nginx carried the bytes. The worker still
decides what is stored, so the hostile upstreams of the embedded proxy's tests are repeated here.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from support.origin import Behaviour, Origin
from support.proxy import wait_for
from support.tier import TierProcess, served_by_front

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


def stored(tier: TierProcess, url: str) -> bool:
    """Whether the next request is a hit the front serves by itself."""
    with tier.client() as c:
        r, front = served_by_front(tier, lambda: c.get(url))
    return front and r.headers["x-cache"] == "HIT"


def gated(origin: Origin, size: int, at: int) -> tuple[bytes, Behaviour]:
    """A package file upstream sends the first `at` bytes of, then holds until the test opens the gate."""
    body = os.urandom(size)
    origin.put(DEB, body)
    b = Behaviour(gate_at=at)
    origin.behaviours[DEB] = b
    return body, b


def test_a_miss_is_fetched_and_stored_by_the_front_and_counted(origin: Origin, start_tier) -> None:
    body = os.urandom(3_000_000)
    origin.put(DEB, body)
    tier = start_tier()
    with tier.client() as c:
        miss = c.get(origin.base + DEB)
        assert miss.status_code == 200 and miss.content == body and miss.headers["x-cache"] == "MISS"
        assert miss.headers["content-length"] == str(len(body)) and "last-modified" in miss.headers
        assert len(tier.front_fetches()) == 1  # nginx carried it
        wait_for(lambda: stored(tier, origin.base + DEB), timeout=10, what="the fetched file to be admitted and published")
        assert origin.count(DEB) == 1
        # the cached entry is the one a worker would have written: its hit from a worker's own path says so
        head = c.head(origin.base + DEB)
        assert head.headers["content-length"] == str(len(body))

        def totals() -> dict:
            return c.get("http://pkgcache/stats.json").json()["total"]

        wait_for(lambda: totals()["miss"] == 1, timeout=15, what="the miss in the counters")
        assert totals()["bytes_from_upstream"] == len(body)
    assert not tier.landing()  # taken into the cache, nothing left behind
    files = list(tier.cache_dir.glob(f"127.0.0.1_{origin.port}/**/hello_1.0_amd64.deb"))
    assert len(files) == 1 and hashlib.sha256(files[0].read_bytes()).digest() == hashlib.sha256(body).digest()


def test_cold_clients_share_one_fetch_and_wait_for_it(origin: Origin, start_tier) -> None:
    body = os.urandom(2_000_000)
    origin.put(DEB, body)
    origin.behaviours[DEB] = Behaviour(chunk_delay=0.02)  # about 0.6 s: every client asks while it runs
    tier = start_tier()

    def get(_: int) -> bytes:
        with tier.client() as c:
            return c.get(origin.base + DEB).content

    with ThreadPoolExecutor(12) as pool:
        bodies = list(pool.map(get, range(12)))
    assert all(b == body for b in bodies)
    assert origin.count(DEB) == 1 and len(tier.front_fetches()) == 1
    assert len(tier.front_hits()) >= 11  # the ones that waited were served by nginx from the published file


@pytest.mark.parametrize("behaviour, why", [
    (Behaviour(reset_after=100_000), "upstream reset"),
    (Behaviour(truncate_to=100_000, content_length=400_000), "short body"),
    (Behaviour(stall_after=100_000, stall=30), "stall"),
    (Behaviour(close_delimited=True), "close-delimited, no index to confirm it"),
    (Behaviour(html_body_as="application/octet-stream"), "an HTML page as a package"),
    (Behaviour(html=True), "a captive portal"),
])
def test_a_body_that_is_not_whole_and_right_is_never_stored(origin: Origin, start_tier, behaviour: Behaviour,
                                                             why: str) -> None:
    body = os.urandom(400_000)
    origin.put(DEB, body)
    origin.behaviours[DEB] = behaviour
    tier = start_tier("--set", "pkgcache_idle_timeout=2")
    with tier.client() as c:
        try:
            c.get(origin.base + DEB)
        except httpx.HTTPError:
            pass  # a broken transfer is what the client must see for a broken body
    wait_for(lambda: len(tier.front_fetches()) == 1, timeout=10, what=f"nginx's line for the fetch ({why})")
    del origin.behaviours[DEB]
    with tier.client() as c:  # the lock was let go: the next request fetches again, and gets it whole
        wait_for(lambda: c.get(origin.base + DEB).content == body, timeout=10, what="a whole fetch after the bad one")
    assert origin.count(DEB) >= 2, why
    wait_for(lambda: stored(tier, origin.base + DEB), timeout=10, what="the whole body to be stored")
    assert not tier.landing()


def test_a_body_with_the_wrong_digest_for_its_by_hash_name_is_not_stored(origin: Origin, start_tier) -> None:
    data = b"Package: hello\n" * 1000
    path = f"/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{hashlib.sha256(data).hexdigest()}"
    origin.put(path, b"planted " + data[8:])  # same size, other bytes
    tier = start_tier()
    with tier.client() as c:
        assert c.get(origin.base + path).status_code == 200
        wait_for(lambda: len(tier.front_fetches()) == 1, timeout=10, what="nginx's line for the fetch")
        time.sleep(0.5)
        r, front = served_by_front(tier, lambda: c.get(origin.base + path))
        assert not front and r.headers["x-cache"] == "MISS"
    assert origin.count(path) == 2


def test_a_404_is_remembered_without_asking_again(origin: Origin, start_tier) -> None:
    tier = start_tier()
    with tier.client() as c:
        assert c.get(origin.base + DEB).status_code == 404
        wait_for(lambda: len(tier.front_fetches()) == 1, timeout=10, what="nginx's line for the fetch")
        time.sleep(0.3)
        again = c.get(origin.base + DEB)
        assert again.status_code == 404 and again.headers["x-cache"] == "HIT"
    assert origin.count(DEB) == 1


def test_a_client_that_leaves_does_not_stop_the_download(origin: Origin, start_tier) -> None:
    _body, b = gated(origin, 2_000_000, 500_000)
    tier = start_tier()
    with socket.create_connection(("127.0.0.1", tier.port)) as s:
        s.sendall(f"GET {origin.base + DEB} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n".encode())
        assert s.recv(65536)
    wait_for(lambda: origin.count(DEB) == 1, timeout=5, what="the download to start")
    b.gate.set()  # the client is gone; upstream now sends the rest
    wait_for(lambda: stored(tier, origin.base + DEB), timeout=15, what="the file stored after its client left")
    assert origin.count(DEB) == 1


def test_range_and_conditional_misses_stay_with_the_worker(origin: Origin, start_tier) -> None:
    body = os.urandom(300_000)
    origin.put(DEB, body)
    tier = start_tier()
    with tier.client() as c:
        part = c.get(origin.base + DEB, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == body[10:20]
        assert not tier.front_fetches()
        wait_for(lambda: stored(tier, origin.base + DEB), timeout=10, what="the whole file stored by the worker")
    assert origin.count(DEB) == 1


def test_an_unreachable_upstream_is_a_clear_error_and_lets_go(origin: Origin, start_tier) -> None:
    body = os.urandom(100_000)
    origin.put(DEB, body)
    tier = start_tier("--set", "pkgcache_offline=off")
    origin.stop()
    with tier.client() as c:
        r = c.get(origin.base + DEB)
        assert r.status_code in (502, 504)
        wait_for(lambda: len(tier.front_fetches()) == 1, timeout=10, what="nginx's line for the fetch")
        wait_for(lambda: "upstream could not be reached" in tier.log_text(), timeout=5,
                 what="the worker to tell an unreachable upstream from an answer")
        origin.restart()
        wait_for(lambda: c.get(origin.base + DEB).content == body, timeout=10, what="the file once upstream is back")


def test_nginx_killed_mid_fetch_lets_the_waiting_clients_go(origin: Origin, start_tier) -> None:
    body, b = gated(origin, 1_000_000, 200_000)
    tier = start_tier()
    results: list[object] = []

    def get() -> None:
        try:
            with tier.client() as c:
                results.append(c.get(origin.base + DEB).status_code)
        except httpx.HTTPError as e:
            results.append(e)

    t = threading.Thread(target=get)
    t.start()
    wait_for(lambda: origin.count(DEB) == 1, timeout=5, what="the download to start")
    pid = int((tier.cache_dir / ".pkgcache" / "tier" / "nginx.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    t.join(20)
    b.gate.set()
    del origin.behaviours[DEB]
    wait_for(lambda: "starting it again" in tier.log_text(), timeout=15, what="nginx to be started again")
    with tier.client() as c:  # the lock was let go: the next request fetches the file whole
        wait_for(lambda: c.get(origin.base + DEB).content == body, timeout=20, what="the file after nginx came back")


def test_on_a_full_disk_the_miss_is_passed_on_unstored(origin: Origin, start_tier) -> None:
    body = os.urandom(200_000)
    origin.put(DEB, body)
    tier = start_tier("--set", "pkgcache_min_free=1000T")  # more than any disk here has free
    with tier.client() as c:
        assert c.get(origin.base + DEB).content == body
        r = c.get(origin.base + DEB)
        assert r.content == body and r.headers["x-cache"] == "MISS"
    assert not tier.front_fetches() and origin.count(DEB) == 2 and not tier.landing()


def test_after_a_slow_download_the_worker_streams_the_next_ones_itself(origin: Origin, start_tier) -> None:
    """nginx makes clients that join a download wait for its end; where the origin proved slow, the worker
    fetches instead and streams to every client as the bytes arrive."""
    first, second = DEB, DEB.replace("hello_1.0", "hello_2.0")
    origin.put(first, os.urandom(2_000_000))
    origin.behaviours[first] = Behaviour(chunk_delay=0.15)  # about 0.4 MB/s
    body = os.urandom(300_000)
    origin.put(second, body)
    tier = start_tier(workers=1)  # each worker measures the origins it fetches from
    with tier.client() as c:
        c.get(origin.base + first)
        wait_for(lambda: stored(tier, origin.base + first), timeout=10, what="the slow file stored")
        assert len(tier.front_fetches()) == 1
        r = c.get(origin.base + second)
        assert r.content == body and r.headers["x-cache"] == "MISS"
    assert len(tier.front_fetches()) == 1  # the worker fetched it
    wait_for(lambda: stored(tier, origin.base + second), timeout=10, what="the worker's download stored")
    # the origin is fast again: the worker's own large download says so, and the next one goes to nginx
    third, fourth = (DEB.replace("hello_1.0", f"hello_{v}") for v in ("3.0", "4.0"))
    origin.put(third, os.urandom(3_000_000))
    origin.put(fourth, os.urandom(3_000_000))
    with tier.client() as c:
        c.get(origin.base + third)
        assert len(tier.front_fetches()) == 1
        c.get(origin.base + fourth)
    wait_for(lambda: len(tier.front_fetches()) == 2, timeout=10, what="nginx to fetch again")
