"""Is upstream reachable?  Decided in the request hook, because afterwards it is too late.

mitmproxy turns a refused or timed-out upstream connection into a 502 before any
later hook can change it, so the offline decision (serve stale, answer 404 and
record the URL) needs a belief about each host *before* the request goes out.
That belief comes from what recent requests saw, refreshed by a quick TCP probe
when it is old.
"""

from __future__ import annotations

import asyncio
import time

DOWN_TTL = 10.0  # re-probe a failed host after this long


class Reachability:
    def __init__(self, mode: str = "auto", probe_timeout: float = 3.0,
                 via: tuple[str, int] | None = None, up_ttl: float = 3.0) -> None:
        self.mode = mode  # auto | on (always offline) | off (never offline)
        self.up_ttl = up_ttl  # trust a success this long: one probe per host per burst of requests
        self.probe_timeout = probe_timeout
        self.via = via  # an upstream proxy: probe it instead of the origin
        self._state: dict[tuple[str, int], tuple[bool, float]] = {}
        self._probes: dict[tuple[str, int], asyncio.Future[bool]] = {}

    def reconfigure(self, mode: str, via: tuple[str, int] | None, up_ttl: float) -> None:
        """New settings; what is known about each host stays (unless the upstream proxy changed)."""
        if via != self.via:
            self._state.clear()
        self.mode, self.via, self.up_ttl = mode, via, up_ttl

    def mark(self, host: str, port: int, up: bool) -> None:
        self._state[self.via or (host, port)] = (up, time.monotonic())

    def known_down(self, host: str, port: int) -> bool:
        s = self._state.get(self.via or (host, port))
        return s is not None and not s[0]

    async def offline(self, host: str, port: int, trust: float | None = None) -> bool:
        """trust: how long a success counts (default up_ttl); 0 asks afresh, as a stale copy is at stake."""
        if self.mode == "on":
            return True
        if self.mode == "off":
            return False
        target = self.via or (host, port)
        s = self._state.get(target)
        now = time.monotonic()
        up_ttl = self.up_ttl if trust is None else trust
        if s is not None and now - s[1] < (up_ttl if s[0] else DOWN_TTL):
            return not s[0]
        fut = self._probes.get(target)
        if fut is None:
            fut = asyncio.ensure_future(self._probe(*target))
            self._probes[target] = fut
            fut.add_done_callback(lambda _f: self._probes.pop(target, None))
        up = await asyncio.shield(fut)
        self._state[target] = (up, time.monotonic())
        return not up

    async def _probe(self, host: str, port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.probe_timeout)
        except (OSError, asyncio.TimeoutError, TimeoutError):
            return False
        writer.close()
        return True

    def snapshot(self) -> dict[str, str]:
        return {f"{h}:{p}": ("up" if up else "down") for (h, p), (up, _) in self._state.items()}
