"""Upstream connections that stall: connect and idle-read timeouts, and the one seam that cuts them.

mitmproxy has no per-request upstream timeout, and a flow cannot be killed while
its body is in transit.  A stalled download would hold its client and every
follower until they give up.  The watchdog here looks at the downloads pkgcache
leads; when one has made no progress for too long it closes that upstream
connection through mitmproxy's proxy server, so the leader's client gets a
broken transfer, nothing is committed, and followers are told at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, http

log = logging.getLogger("pkgcache")


def abort_server(client: connection.Client, server: connection.Server, reason: str) -> bool:
    """Close one upstream connection of a live client connection; False if it is already gone.

    This is the only place that reaches into mitmproxy's connection handlers.
    """
    proxyserver: Any = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = getattr(proxyserver, "connections", {}).get(client.id) if proxyserver else None
    io = getattr(handler, "transports", {}).get(server) if handler is not None else None
    task = getattr(io, "handler", None)
    if task is None or task.done():
        return False
    task.cancel(reason)
    return True


@dataclass
class Watched:
    """One upstream transfer: when it started, and when it last made progress."""

    flow: http.HTTPFlow  # its server_conn is replaced once mitmproxy picks the connection: read it late
    url: str
    started: float
    last: float
    on_abort: Callable[[str], None] | None = None
    connected: bool = False

    def progress(self) -> None:
        self.last = time.monotonic()


class Watchdog:
    """Checks watched transfers once a second; idle ones are cut."""

    def __init__(self) -> None:
        self.connect_timeout = 30.0
        self.idle_timeout = 30.0
        self.watched: dict[str, Watched] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, flow: http.HTTPFlow, url: str, on_abort: Callable[[str], None] | None = None) -> Watched:
        now = time.monotonic()
        w = Watched(flow, url, now, now, on_abort)
        self.watched[flow.id] = w
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pkgcache upstream watchdog")
        return w

    def unwatch(self, flow_id: str) -> None:
        self.watched.pop(flow_id, None)

    def overdue(self, w: Watched, now: float) -> str | None:
        """Why w should be cut now, or None.  Before the connection is up the connect timeout applies;
        after it, the idle timeout (no response headers, or no body bytes, for that long)."""
        if not w.connected:
            if w.flow.server_conn.timestamp_tcp_setup is None:
                if now - w.started > self.connect_timeout:
                    return f"no connection to upstream within {self.connect_timeout:g} s"
                return None
            w.connected, w.last = True, max(w.last, now - 1.0)  # the idle clock starts at the connection
        if now - w.last > self.idle_timeout:
            return f"upstream sent nothing for {self.idle_timeout:g} s"
        return None

    def check(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        cut = []
        for flow_id, w in list(self.watched.items()):
            why = self.overdue(w, now)
            if why is None:
                continue
            del self.watched[flow_id]
            log.warning("pkgcache: %s: %s; closing the upstream connection", w.url, why)
            if w.on_abort is not None:
                w.on_abort(why)
            abort_server(w.flow.client_conn, w.flow.server_conn, why)
            cut.append(flow_id)
        return cut

    async def _run(self) -> None:
        while self.watched:
            await asyncio.sleep(1.0)
            self.check()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
