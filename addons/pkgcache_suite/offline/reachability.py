"""Is upstream reachable?  Decided in the request hook, because afterwards it is too late.

mitmproxy turns a refused or timed-out upstream connection into a 502 before any
later hook can change it, so the offline decision (serve stale, answer 404 and
record the URL) needs a belief about each route *before* the request goes out.

The belief comes from real traffic first.  A real answer from a route makes it
up at once, and every answer renews that for a few seconds: the requests of a
burst go straight upstream, at no extra connection.  A route nothing recent is
known about, and the route of a request that has a fallback (a stale copy to
serve, another mirror to try), is probed with one TCP connect; a probe that is merely slow decides
nothing (the request goes upstream and finds out for real), while a refused or
unroutable connect, or a name that does not resolve, three times over within
half a second, answers that request offline, so the first request after upstream vanished gets a stale copy or a
recorded offline miss rather than mitmproxy's 502.  A
route is held down, without probing, only after repeated failures in a row,
and only for a short while; any real success ends that at once.  Going down and
coming back are logged with their reason.

A route is where the connection really goes: the upstream proxy a repository
or the whole proxy uses, else the origin itself.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger("pkgcache")

HOLD_AFTER = 2  # failures in a row before a route is held down without probing
HOLD = 10.0  # seconds a route is held down; then it is probed again
PROBE_TIMEOUT = 3.0  # a probe slower than this decides nothing
PROBE_RETRIES = (0.1, 0.3)  # a refused probe connects again after these pauses: one refused connect in a
                            # mirror's many is weather a direct client's retry rides out, not a verdict

Route = tuple[str, int]


class Verdict(str, Enum):
    ONLINE = "online"  # go upstream
    OFFLINE = "offline"  # answer locally
    PROBE = "probe"  # find out with one connect


@dataclass
class RouteState:
    up: bool | None = None  # the last word: a real answer or a probe (None: nothing known)
    real: bool = False  # the last word came from real traffic
    when: float = 0.0  # monotonic time of the last word
    failures: int = 0  # failures in a row
    held_until: float = 0.0


def judge(s: RouteState | None, now: float, up_ttl: float, fallback: bool = False) -> Verdict:
    """Pure: what a request does about a route.  A real answer within up_ttl is trusted (every answer
    renews it, so the misses of a burst never probe); an older one, or none, is checked with a probe.
    fallback: something better than mitmproxy's 502 is at hand if upstream is gone (a cached copy of an
    index being revalidated, another target of a remapped repository), so the route is always checked."""
    if s is None or s.up is None:
        return Verdict.PROBE
    if s.failures >= HOLD_AFTER and now < s.held_until:
        return Verdict.OFFLINE
    if s.up and now - s.when < up_ttl and not fallback:
        return Verdict.ONLINE
    return Verdict.PROBE


class ProbeResult(str, Enum):
    UP = "up"
    REFUSED = "refused"  # refused, unroutable, no such name: a direct client fails the same way
    SLOW = "slow"  # no answer in time: says nothing about the real connection


_DEFINITE = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN}


def classify(exc: BaseException | None) -> ProbeResult:
    """Pure: what a probe's outcome says."""
    if exc is None:
        return ProbeResult.UP
    if isinstance(exc, socket.gaierror) or (isinstance(exc, OSError) and exc.errno in _DEFINITE):
        return ProbeResult.REFUSED
    if isinstance(exc, ConnectionRefusedError):
        return ProbeResult.REFUSED
    return ProbeResult.SLOW


def via_route(via: tuple[str, tuple[str, int]] | None) -> Route | None:
    """The route of a flow sent through an upstream proxy (mitmproxy's ``server_conn.via``), else None."""
    return (via[1][0], via[1][1]) if via else None


class Reachability:
    def __init__(self, mode: str = "auto", probe_timeout: float = PROBE_TIMEOUT,
                 via: Route | None = None, up_ttl: float = 3.0) -> None:
        self.mode = mode  # auto | on (always offline) | off (never offline)
        self.up_ttl = up_ttl  # how long a real answer is trusted without a probe
        self.probe_timeout = probe_timeout
        self.via = via  # the proxy's own upstream proxy: every route goes through it
        self._state: dict[Route, RouteState] = {}
        self._probes: dict[Route, asyncio.Future[ProbeResult]] = {}

    def reconfigure(self, mode: str, via: Route | None, up_ttl: float) -> None:
        """New settings; what is known about each route stays (unless the upstream proxy changed)."""
        if via != self.via:
            self._state.clear()
        self.mode, self.via, self.up_ttl = mode, via, up_ttl

    def route(self, host: str, port: int, via: Route | None = None) -> Route:
        return via or self.via or (host, port)

    def mark(self, host: str, port: int, up: bool, via: Route | None = None, why: str = "") -> None:
        """What real traffic saw: an answer (up), or a connection that could not be made (down)."""
        self._note(self.route(host, port, via), up, True, why or ("answered" if up else "connection failed"))

    def _note(self, r: Route, up: bool, real: bool, why: str, since: float | None = None, failures: int = 1) -> None:
        s = self._state.setdefault(r, RouteState())
        if since is not None and s.real and s.when > since:
            return  # real traffic spoke while the probe ran: it wins
        now = time.monotonic()
        was_down = s.up is False
        s.up, s.real, s.when = up, real, now
        if up:
            if was_down:
                log.warning("pkgcache: %s:%s is reachable again (%s)", r[0], r[1], why)
            s.failures, s.held_until = 0, 0.0
            return
        s.failures += failures
        if s.failures >= HOLD_AFTER:
            s.held_until = now + HOLD
            log.warning("pkgcache: %s:%s held down for %.0f s after %d failures in a row (%s)", r[0], r[1], HOLD,
                        s.failures, why)
        else:
            log.info("pkgcache: %s:%s failed (%s)", r[0], r[1], why)

    def known_down(self, host: str, port: int, via: Route | None = None) -> bool:
        s = self._state.get(self.route(host, port, via))
        return s is not None and s.up is False

    async def offline(self, host: str, port: int, via: Route | None = None, fallback: bool = False) -> bool:
        """Whether to answer this request locally (fallback: see judge)."""
        if self.mode == "on":
            return True
        if self.mode == "off":
            return False
        r = self.route(host, port, via)
        verdict = judge(self._state.get(r), time.monotonic(), self.up_ttl, fallback)
        if verdict is not Verdict.PROBE:
            return verdict is Verdict.OFFLINE
        fut = self._probes.get(r)
        if fut is None:
            fut = asyncio.ensure_future(self._probe(r))
            self._probes[r] = fut
            fut.add_done_callback(lambda _f: self._probes.pop(r, None))
        return await asyncio.shield(fut) is ProbeResult.REFUSED

    async def _probe(self, r: Route) -> ProbeResult:
        started = time.monotonic()
        pauses = iter(PROBE_RETRIES)
        tries = 0
        while True:
            tries += 1
            exc = await self._connect(r)
            result = classify(exc)
            pause = next(pauses, None) if result is ProbeResult.REFUSED else None
            if pause is None:
                break
            await asyncio.sleep(pause)
        if result is ProbeResult.UP:
            self._note(r, True, False, "a probe connected" + (f" on try {tries}" if tries > 1 else ""),
                       since=started)
        elif result is ProbeResult.REFUSED:
            self._note(r, False, False, f"{tries} probes failed: {exc}", since=started, failures=tries)
        else:
            log.info("pkgcache: %s:%s: a probe got no answer in %.0f s; asking upstream anyway", r[0], r[1],
                     self.probe_timeout)
        return result

    async def _connect(self, r: Route) -> BaseException | None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*r), self.probe_timeout)
            writer.close()
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            return e
        return None

    def snapshot(self) -> dict[str, str]:
        return {f"{h}:{p}": ("unknown" if s.up is None else "up" if s.up else "down")
                for (h, p), s in self._state.items()}
