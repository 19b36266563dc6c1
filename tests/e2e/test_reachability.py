"""Online, a client through pkgcache in ``auto`` gets what it would get going direct: real traffic decides
whether upstream is reachable, never a side probe."""

from __future__ import annotations

import json

import pytest

from support.origin import Origin
from support.proxy import wait_for

PATHS = [f"/debian/pool/main/k/k{i}/k{i}_1.0_all.deb" for i in range(3)]


def _stop_accepting(origin: Origin) -> None:
    """New connects are refused from now on; connections already open keep being served."""
    origin.server.shutdown()
    origin.server.socket.close()


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_kept_alive_connections_serve_while_new_connects_fail(origin: Origin, start_proxy, mode: str) -> None:
    for p in PATHS:
        origin.put(p, p.encode() * 100)
    proxy = start_proxy("--set", f"pkgcache_offline={mode}")
    got = []
    with proxy.client() as c:  # one client connection: mitmproxy keeps one upstream connection for it
        for i, p in enumerate(PATHS):
            r = c.get(origin.base + p)
            got.append((r.status_code, r.content == p.encode() * 100))
            if i == 0:
                _stop_accepting(origin)
        stats = c.get("http://pkgcache/stats.json").json()
    assert got == [(200, True)] * 3, (got, proxy.log_text())
    assert stats["total"].get("offline_miss", 0) == 0
    assert "held down" not in proxy.log_text()


def test_misses_after_a_real_answer_open_no_extra_connection(origin: Origin, start_proxy) -> None:
    """Repeated misses cost no extra connections to the mirror: no probe once real traffic has answered."""
    import socket
    import threading

    for p in PATHS:
        origin.put(p, b"x" * 1000)
    accepted = []
    real_accept = origin.server.get_request

    def counting_accept():
        conn = real_accept()
        accepted.append(conn[1])
        return conn

    origin.server.get_request = counting_accept  # type: ignore[method-assign]
    proxy = start_proxy()
    with proxy.client() as c:
        for p in PATHS:
            assert c.get(origin.base + p).status_code == 200
    # the first miss: one probe (nothing was known) and the real connection; then none
    assert len(accepted) <= 2, accepted
    del socket, threading


def test_an_unreachable_origin_is_answered_offline_and_logged(origin: Origin, start_proxy, tmp_path) -> None:
    ds = tmp_path / "ds"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}")
    origin.stop()
    with proxy.client() as c:
        for p in PATHS:
            r = c.get(origin.base + p)
            assert r.status_code == 404 and "offline" in r.text
    wait_for(lambda: "held down" in proxy.log_text(), what="the route held down, in the log")

    def wanted() -> set[str]:
        try:
            return {w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]}
        except (OSError, ValueError, KeyError):
            return set()

    wait_for(lambda: wanted() == {origin.base + p for p in PATHS}, what="the wanted list")
