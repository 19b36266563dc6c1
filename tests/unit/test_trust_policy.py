"""Table-driven tests of the pure trust decisions: bounds, destinations, admission, relay, watchdog."""

from __future__ import annotations

import ipaddress

import pytest

from pkgcache_suite.policy.admission import admit, close_delimited
from pkgcache_suite.policy.limits import check_request
from pkgcache_suite.policy.admission import looks_like_html as _looks_like_html
from pkgcache_suite.transfer.resolver import Resolver
from pkgcache_suite.policy.destinations import is_local_address, local_literal
from pkgcache_suite.transfer.relay import Relay
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
    ("/ok", [("X-A", "a\x00b")], 400),
    ("/pool/m/%2e/x.deb", [], 400), ("/pool/m/./x.deb", [], 400), ("/pool/../x.deb", [], 400),
    ("/pool/%2E%2e/x.deb", [], 400), ("/pool/m/..", [], 400), ("/pool/x.deb%00.html", [], 400),
    ("/pool/x.deb?a=../b", [], None), ("/pool/...deb", [], None), ("/pool/x%2edeb", [], None),
    ("/pool/.hidden/x.deb", [], None),
])
def test_client_input_bounds(path: str, headers: list[tuple[str, str]], status: int | None) -> None:
    got = check_request(path, headers)
    assert (got.status if got else None) == status


@pytest.mark.parametrize("method,headers,status", [
    ("GET", [("Transfer-Encoding", "chunked")], 400),
    ("head", [("transfer-encoding", "chunked")], 400),
    ("GET", [("Content-Length", "0")], None),
    ("POST", [("Transfer-Encoding", "chunked")], None),
    ("PUT", [("Content-Length", "7")], None),
])
def test_a_body_on_a_bodiless_method_is_refused(method: str, headers: list[tuple[str, str]],
                                                status: int | None) -> None:
    """What HAProxy refuses in front of the tier, the workers refuse alike (HAProxy drops a Content-Length
    sent beside Transfer-Encoding before its rules run, so this is the rule both can apply)."""
    got = check_request("/ok", headers, method)
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
