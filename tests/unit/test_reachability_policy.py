"""When a request is answered offline: real traffic decides, a slow probe decides nothing."""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import pytest

from pkgcache_suite.offline.reachability import (HOLD, HOLD_AFTER, ProbeResult, Reachability, RouteState, Verdict,
                                                 classify, judge)

NOW = 1000.0


@pytest.mark.parametrize("state,verdict", [
    (None, Verdict.PROBE),  # nothing known: one connect finds out
    (RouteState(), Verdict.PROBE),
    (RouteState(up=True, real=True, when=NOW - 1), Verdict.ONLINE),  # a burst: no probe, no extra connection
    (RouteState(up=True, real=True, when=NOW - 60), Verdict.PROBE),  # an old answer is checked again
    (RouteState(up=False, real=True, when=NOW - 1, failures=1), Verdict.PROBE),  # one failure holds nothing
    (RouteState(up=False, real=True, when=NOW - 1, failures=HOLD_AFTER, held_until=NOW + 5), Verdict.OFFLINE),
    (RouteState(up=False, real=True, when=NOW - 20, failures=HOLD_AFTER, held_until=NOW - 1), Verdict.PROBE),
])
def test_judge(state: RouteState | None, verdict: Verdict) -> None:
    assert judge(state, NOW, up_ttl=3.0) is verdict


def test_with_a_stale_copy_at_hand_the_route_is_always_checked() -> None:
    fresh = RouteState(up=True, real=True, when=NOW - 0.1)
    assert judge(fresh, NOW, up_ttl=3.0, fallback=True) is Verdict.PROBE
    held = RouteState(up=False, real=True, when=NOW - 1, failures=HOLD_AFTER, held_until=NOW + 5)
    assert judge(held, NOW, up_ttl=3.0, fallback=True) is Verdict.OFFLINE


@pytest.mark.parametrize("exc,result", [
    (None, ProbeResult.UP),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ProbeResult.REFUSED),
    (OSError(errno.ENETUNREACH, "unreachable"), ProbeResult.REFUSED),
    (OSError(errno.EHOSTUNREACH, "no route"), ProbeResult.REFUSED),
    (socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution"), ProbeResult.REFUSED),
    (TimeoutError(), ProbeResult.SLOW),  # a slow connect says nothing about the real one
    (OSError(errno.ECONNRESET, "reset"), ProbeResult.SLOW),
])
def test_classify(exc: BaseException | None, result: ProbeResult) -> None:
    assert classify(exc) is result


def _slow_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port whose accept queue is full: a new connect waits, as on a congested link."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(srv.getsockname())
        fillers.append(c)
    return srv, fillers


async def test_a_slow_probe_holds_nothing_down_and_real_traffic_wins() -> None:
    r = Reachability("auto", probe_timeout=0.3)
    srv, fillers = _slow_listener()
    try:
        slow = srv.getsockname()
        assert await r.offline(*slow) is False  # slow: the request goes upstream and finds out for real
        assert await r._probe(slow) is ProbeResult.SLOW  # (and it was slow, not refused)
        assert not r.known_down(*slow)
    finally:
        for c in fillers:
            c.close()
        srv.close()
    r.mark("mirror.example", 80, True)
    assert await r.offline("mirror.example", 80) is False  # no probe: a real answer was seen
    for _ in range(HOLD_AFTER):
        r.mark("mirror.example", 80, False, why="connection refused")
    assert await r.offline("mirror.example", 80) is True  # held down after failures in a row
    r.mark("mirror.example", 80, True)
    assert await r.offline("mirror.example", 80) is False  # any real success ends it at once
    assert HOLD <= 30


async def test_a_late_probe_does_not_overwrite_a_real_answer(unused_tcp_port: int) -> None:
    r = Reachability("auto", probe_timeout=1.0)
    probe = asyncio.ensure_future(r._probe(("127.0.0.1", unused_tcp_port)))  # refused, eventually
    r.mark("127.0.0.1", unused_tcp_port, True)  # meanwhile a real response arrives
    await asyncio.sleep(0)
    r._state[("127.0.0.1", unused_tcp_port)].when += 1.0  # the real word is the newer one
    assert await probe is ProbeResult.REFUSED
    assert not r.known_down("127.0.0.1", unused_tcp_port)


async def test_routes_through_an_upstream_proxy_are_the_proxys() -> None:
    r = Reachability("auto")
    r.mark("mirror.example", 80, True, via=("192.0.2.9", 3128))
    assert r.route("mirror.example", 80, ("192.0.2.9", 3128)) == ("192.0.2.9", 3128)
    assert r.snapshot() == {"192.0.2.9:3128": "up"}


async def test_one_refused_connect_is_weather_and_only_repeated_refusals_answer_offline(unused_tcp_port: int) -> None:
    """The first probe connect is refused (nothing listens yet), the retry finds the mirror: the request goes
    upstream and nothing is held down.  Nothing listening at all: offline, and the route is held."""
    from pkgcache_suite.offline.reachability import PROBE_RETRIES

    r = Reachability("auto", probe_timeout=1.0)
    route = ("127.0.0.1", unused_tcp_port)
    server: list[asyncio.AbstractServer] = []

    async def listen_soon() -> None:
        await asyncio.sleep(PROBE_RETRIES[0] / 2)  # after the first connect, before the retry
        server.append(await asyncio.start_server(lambda _r, w: w.close(), *route))

    listening = asyncio.ensure_future(listen_soon())
    assert await r.offline(*route) is False
    await listening
    assert not r.known_down(*route) and r.snapshot() == {f"127.0.0.1:{unused_tcp_port}": "up"}
    server[0].close()
    await server[0].wait_closed()
    r._state.clear()
    assert await r.offline(*route) is True  # refused on every try
    assert judge(r._state[route], time.monotonic(), r.up_ttl) is Verdict.OFFLINE  # held: later requests do not wait
