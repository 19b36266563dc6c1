"""Table-driven tests of the pure trust decisions, and hook-level tests with mitmproxy's taddons."""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import os
import time
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow, tutils

from pkgcache_suite.policy.admission import admit, close_delimited
from pkgcache_suite.policy.limits import check_request
from pkgcache_suite.context import CacheContext
from pkgcache_suite.policy.admission import looks_like_html as _looks_like_html
from pkgcache_suite.proxy.cache import CacheCore
from pkgcache_suite.policy.destinations import Resolver, is_local_address, local_literal
from pkgcache_suite.transfer.relay import Relay
from pkgcache_suite.storage import CacheStore, reconcile, sweep_partials
from pkgcache_suite.transfer.watchdog import Watchdog


@pytest.mark.parametrize("path,headers,status", [
    ("/ok", [("Range", "bytes=0-1")], None),
    ("/" + "a" * 9000, [], 414),
    ("/ok", [("Range", "bytes=" + "9" * 65 + "-")], 400),
    ("/ok", [("Range", "bytes=0-" + "1" * 300)], 400),
    ("/ok", [("If-Range", "x" * 257)], 400),
    ("/ok", [("If-Modified-Since", "x" * 65)], 400),
    ("/ok", [("If-None-Match", "x" * 4097)], 400),
    ("/ok", [("X-Long", "x" * 8193)], 431),
    ("/ok", [(f"X-{i}", "v") for i in range(201)], 431),
    ("/ok", [(f"X-{i}", "v" * 8000) for i in range(9)], 431),
    ("/ok", [("If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT")], None),
])
def test_client_input_bounds(path: str, headers: list[tuple[str, str]], status: int | None) -> None:
    got = check_request(path, headers)
    assert (got.status if got else None) == status


@pytest.mark.parametrize("host,local", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("0.0.0.0", True),
    ("169.254.169.254", True), ("fe80::1", True), ("::ffff:127.0.0.1", True), ("localhost", True),
    ("foo.localhost", True), ("LOCALHOST.", True), ("10.0.0.5", False), ("192.168.1.2", False),
    ("172.16.0.1", False), ("192.0.2.7", False), ("mirror.example", None),
])
def test_local_destinations(host: str, local: bool | None) -> None:
    assert local_literal(host) == local


def test_is_local_address_keeps_private_lan_ranges_allowed() -> None:
    assert not is_local_address(ipaddress.ip_address("10.1.2.3"))
    assert is_local_address(ipaddress.ip_address("127.0.0.1"))


async def test_key_host_uses_a_name_only_when_it_resolves_to_the_target() -> None:
    r = Resolver()
    assert await r.key_host("127.0.0.1", "localhost:8080") == "localhost"
    assert await r.key_host("127.0.0.1", "name.invalid") == "127.0.0.1"
    assert await r.key_host("127.0.0.1", "127.0.0.2") == "127.0.0.1"
    assert await r.key_host("127.0.0.1", None) == "127.0.0.1"
    assert await r.key_host("mirror.example", "other.example") == "mirror.example"


@pytest.mark.parametrize("kind,headers,version,by_hash,ref,store,length,sha", [
    # framed bodies of unknown files are stored as framed
    ("immutable", {"content-length": "10"}, "HTTP/1.1", None, None, True, 10, None),
    ("immutable", {"transfer-encoding": "chunked"}, "HTTP/1.1", None, None, True, None, None),
    # RFC 9112 6.3: a close-delimited body needs its size from elsewhere
    ("immutable", {}, "HTTP/1.1", None, None, False, None, None),
    ("immutable", {}, "HTTP/1.0", None, None, False, None, None),
    ("volatile", {}, "HTTP/1.1", None, None, False, None, None),
    ("immutable", {}, "HTTP/1.1", None, (5, "ab"), True, 5, "ab"),
    ("volatile", {}, "HTTP/1.1", "CD", None, True, None, "cd"),
    ("immutable", {}, "HTTP/2.0", None, None, True, None, None),
    # captive portals
    ("immutable", {"content-type": "text/html; charset=utf-8", "content-length": "3"}, "HTTP/1.1", None, None,
     False, None, None),
    ("volatile", {"content-type": "text/html", "content-length": "3"}, "HTTP/1.1", None, None, True, 3, None),
    # the cached index decides size and digest of package files
    ("immutable", {"content-length": "6"}, "HTTP/1.1", None, (5, "ab"), False, None, None),
    ("immutable", {"content-length": "5"}, "HTTP/1.1", None, (5, "ab"), True, 5, "ab"),
    ("volatile", {"content-length": "6"}, "HTTP/1.1", None, (5, "ab"), True, 6, None),
    # nonsense lengths
    ("immutable", {"content-length": "12a"}, "HTTP/1.1", None, None, False, None, None),
    ("immutable", {"content-length": "9" * 30}, "HTTP/1.1", None, None, False, None, None),
])
def test_admission(kind, headers, version, by_hash, ref, store, length, sha) -> None:
    a = admit(kind, headers, version, by_hash, ref)
    assert a.store == store, a.why
    if store:
        assert (a.length, a.sha256) == (length, sha)
    else:
        assert a.why


def test_close_delimited_only_for_http1_without_framing() -> None:
    assert close_delimited({}, "HTTP/1.1")
    assert not close_delimited({"content-length": "0"}, "HTTP/1.1")
    assert not close_delimited({"transfer-encoding": "gzip, chunked"}, "HTTP/1.1")
    assert not close_delimited({}, "HTTP/3")


@pytest.mark.parametrize("chunk,html", [
    (b"<!DOCTYPE html><html>", True), (b"  \n<html lang=en>", True), (b"<?xml?><html xmlns>", True),
    (b"!<arch>\ndebian-binary", False), (b"PK\x03\x04", False), (b"\x1f\x8b\x08", False),
    (b"<?xml version='1.0'?><metadata>", False),
])
def test_html_sniffing(chunk: bytes, html: bool) -> None:
    assert _looks_like_html(chunk) == html


def test_relay_serves_followers_from_where_the_file_stops_and_stays_bounded() -> None:
    r = Relay(base=10, chunks=[b"abc"], followers=2, limit=8)
    r.join(1, 4)  # still reading the file
    r.join(2, 10)
    assert r.read(2, 10, 2) == b"ab"
    r.append(b"defgh")
    assert r.read(2, 12, 100) == b"c"
    assert r.read(2, 13, 100) == b"defgh"
    assert r.read(1, 10, 3) == b"abc"  # nothing dropped while a reader is behind
    r.leave(2)
    r.append(b"12345678")  # follower 1 is now more than the limit behind: it is cut
    assert r.read(1, 13, 5) is None
    assert r.start > 10 and r.end - r.start <= 8 + 8
    assert r.read(3, 10, 1) is None  # a newcomer cannot start below what was dropped


def test_relay_keeps_everything_until_every_follower_joined() -> None:
    r = Relay(base=0, chunks=[b"xy"], followers=1, limit=100)
    r.append(b"z")
    assert r.chunks == [b"xy", b"z"]
    r.join(1, 0)
    assert r.read(1, 0, 3) == b"xy"
    assert r.read(1, 2, 3) == b"z"
    assert r.read(1, 3, 3) == b""
    assert r.chunks == [] or r.start == 2


class _Server:
    def __init__(self, setup: float | None) -> None:
        self.timestamp_tcp_setup = setup


class _Flow:
    def __init__(self, setup: float | None) -> None:
        self.id = "f"
        self.server_conn = _Server(setup)


@pytest.mark.parametrize("setup,age,idle,cut", [
    (None, 5, 5, False),  # connecting, within the connect timeout
    (None, 11, 11, True),  # no connection after the connect timeout
    (1.0, 5, 5, False),  # connected, quiet for less than the idle timeout
    (1.0, 40, 25, True),  # connected, quiet for longer
])
def test_watchdog_decisions(setup, age, idle, cut) -> None:
    wd = Watchdog()
    wd.connect_timeout, wd.idle_timeout = 10, 20
    from pkgcache_suite.transfer.watchdog import Watched

    now = 1000.0
    w = Watched(_Flow(setup), "http://x/", started=now - age, last=now - idle)  # type: ignore[arg-type]
    if setup is not None:
        w.connected = True
    assert (wd.overdue(w, now) is not None) == cut


# -- the store: links, liveness, sweep, reconcile --------------------------------------------------------------


def test_partial_is_followed_only_while_its_writer_holds_it(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    w = store.writer("h/x.deb", "http://h/x.deb", "immutable")
    w.begin({"url": "http://h/x.deb", "length": None, "headers": []})
    header = store.read_partial_header("h/x.deb")
    assert header is not None and header["inode"] == os.fstat(w.fd).st_ino
    fd = store.open_live_partial("h/x.deb", header)
    assert fd is not None
    os.close(fd)
    fcntl.flock(w.fd, fcntl.LOCK_UN)  # as if its writer had died
    assert store.open_live_partial("h/x.deb", header) is None
    assert store.open_live_partial("h/x.deb", {**header, "inode": -1}) is None
    w.abort()


def test_sweep_removes_dead_leftovers_and_links_but_not_live_downloads(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    live = store.writer("h/live.deb", "u", "immutable")
    live.begin({"url": "u", "length": None, "headers": []})
    partial = tmp_path / "c" / ".pkgcache" / "partial"
    for name in ("dead.part", "dead.json", "x.json.tmp"):
        (partial / name).write_bytes(b"")
    (partial / "link.part").symlink_to(tmp_path / "elsewhere")
    old = time.time() - 60
    for p in partial.iterdir():
        os.utime(p, (old, old), follow_symlinks=False)
    sweep_partials(store)
    assert sorted(p.name for p in partial.iterdir()) == sorted([live.part.name, live.header_file.name])
    assert live.part.exists()
    live.abort()


def test_reconcile_indexes_vouched_bodies_and_removes_the_rest(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    good = b"vouched for"
    for key, data in (("h/a.deb", good), ("h/b.deb", b"nobody knows me")):
        p = tmp_path / "c" / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    store.record_refs("h/dists/x/Packages", [("h/a.deb", len(good), hashlib.sha256(good).hexdigest())])
    counts = reconcile(store)
    assert counts == {"indexed": 1, "removed": 1, "forgotten": 0}
    assert store.lookup("h/a.deb") is not None and not (tmp_path / "c" / "h/b.deb").exists()


def test_private_files_are_never_written_through_links(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    store.lock_path("k").symlink_to(victim)
    lock = store.try_lock("k")
    assert lock is not None
    lock.release()
    assert victim.read_bytes() == b"keep" and not store.lock_path("k").is_symlink()


# -- hooks, with mitmproxy's test helpers -----------------------------------------------------------------------


async def test_a_failure_while_deciding_leaves_the_response_streamed_and_unstored(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    core = CacheCore(CacheContext())
    with taddons.context(core) as tctx:
        tctx.configure(core, pkgcache_dir=str(tmp_path / "c"))
        f = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"))
        await core.request(f)
        assert f.id in core.flows
        f.response = tutils.tresp(content=b"x" * 10)

        def boom(*_a, **_k):
            raise RuntimeError("unexpected")

        monkeypatch.setattr("pkgcache_suite.transfer.download.admit", boom)
        core.responseheaders(f)
        assert f.response.stream is True
        assert f.id not in core.flows
        store = core.c.store
        assert store is not None
        lock = store.try_lock("mirror.example/debian/pool/x_1_all.deb")  # the lead was given up
        assert lock is not None
        lock.release()
        store.close()


async def test_hooks_leave_errored_and_answered_flows_alone(tmp_path: Path) -> None:
    core = CacheCore(CacheContext())
    with taddons.context(core) as tctx:
        tctx.configure(core, pkgcache_dir=str(tmp_path / "c"))
        f = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), err=True)
        await core.request(f)
        assert f.id not in core.flows
        g = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), resp=True)
        await core.request(g)
        assert g.id not in core.flows
        assert core.c.store is not None
        core.c.store.close()
