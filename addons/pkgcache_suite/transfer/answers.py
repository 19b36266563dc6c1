"""Answering from the cache: from a committed body (304, 416, HEAD, 206, 200) or by following a download.

Small bodies go out from memory; anything larger is *routed* to the loopback
file server, which streams it from disk (mitmproxy sends a response an addon
sets whole, from memory).  A follower reads the leader's partial file as it
grows, in this process or another one sharing the cache root.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from pkgcache_suite.policy import httpsem
from pkgcache_suite.storage import Entry, StoreError
from pkgcache_suite.transfer.fileserver import PATH_PREFIX, Job
from pkgcache_suite.transfer.fronthit import hand_hit_to_front
from pkgcache_suite.transfer.flight import Flight, FlightState, RemoteProgress
from pkgcache_suite.transfer.state import MARKERS, OWN_ANSWER, FlowState, Role

if TYPE_CHECKING:
    from pkgcache_suite.context import CacheContext
    from pkgcache_suite.storage.opened import OpenedStore

log = logging.getLogger("pkgcache")

REASONS = {200: "OK", 206: "Partial Content"}
# Request headers that would make upstream answer something other than the whole body.
CLIENT_ONLY = ("range", "if-range", "if-none-match", "if-modified-since", "accept-encoding")
FRONT_WAIT = 20.0  # longest a client waits, with no byte sent, for a download the tier's nginx fetches
_EVENTS = {"HIT": "hit", "REVALIDATED": "revalidated", "STALE": "stale"}


def count(shared: CacheContext, st: FlowState, event: str, from_cache: int = 0, from_upstream: int = 0) -> None:
    if from_cache:
        shared.used[st.key] = time.time()  # for least-recently-used eviction; written in batches
    shared.stats.count(event, st.kind.value, st.host, from_cache, from_upstream, repo=st.key.split("/", 1)[0],
                       client=st.network, url=st.url, ecosystem=st.ecosystem)


def take_client_headers(flow: http.HTTPFlow, st: FlowState) -> None:
    """Ask upstream for the whole identity-encoded body; remember what the client asked for."""
    h = flow.request.headers
    for name in CLIENT_ONLY:
        if name in h:
            st.client[name] = h[name]
            del h[name]


class Answers:
    def __init__(self, shared: CacheContext, flows: dict[str, FlowState], storage: OpenedStore) -> None:
        self.c, self.flows, self.storage = shared, flows, storage

    def serve_entry(self, flow: http.HTTPFlow, st: FlowState, entry: Entry, x_cache: str,
                    in_memory: bool = False) -> None:
        """Answer from a committed body (RFC 9110 sections 13.2.2 and 14): conditionals first, then Range."""
        store, s = self.storage.store, self.storage.settings
        if x_cache == "HIT" and not in_memory and hand_hit_to_front(flow, st, entry, store, s.front_run):
            return  # behind the tier's nginx: nginx serves it
        h = st.client if st.role is Role.REVALIDATE else flow.request.headers  # ours were added for upstream
        headers = httpsem.entry_headers(entry, x_cache)
        event = _EVENTS[x_cache]
        st.x_cache = x_cache
        if httpsem.not_modified(entry, h.get("if-none-match"), h.get("if-modified-since")):
            resp = http.Response.make(304, b"", dict(headers))
            del resp.headers["content-length"]
            self._set_response(flow, st, resp, event, 0)
            return
        rng = None
        if httpsem.if_range_ok(entry, h.get("if-range")):
            try:
                rng = httpsem.parse_range(h.get("range"), entry.length)
            except httpsem.Unsatisfiable:
                self.respond_416(flow, st, entry.length)
                return
        status, offset, length = (206, rng.start, rng.length) if rng else (200, 0, entry.length)
        if rng:
            headers.append(("Content-Range", f"bytes {rng.start}-{rng.end}/{entry.length}"))
        if flow.request.method == "HEAD":
            resp = http.Response.make(status, b"", dict(headers))
            resp.headers["Content-Length"] = str(length)
            self._set_response(flow, st, resp, event, 0)
            return
        fd = store.open_body(entry.key)
        if length <= s.memory_hit_max or in_memory:
            try:
                data = os.pread(fd, length, offset)
            finally:
                os.close(fd)
            if len(data) != length:
                raise StoreError(0, f"cached body of {entry.key} shrank while reading")
            self._set_response(flow, st, http.Response.make(status, data, dict(headers)), event, length)
            return
        count(self.c, st, event, from_cache=length)
        self.route(flow, st, Job(status, REASONS[status], headers, fd, offset, length))

    def _set_response(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response, event: str,
                      nbytes: int) -> None:
        flow.response = resp
        flow.comment = f"pkgcache: {st.x_cache} ({st.kind.value})"
        flow.marked = MARKERS.get(st.x_cache, "")
        count(self.c, st, event, from_cache=nbytes)

    @staticmethod
    def respond_416(flow: http.HTTPFlow, st: FlowState, size: int) -> None:
        flow.response = http.Response.make(416, b"", {"Content-Range": f"bytes */{size}", "X-Cache": "HIT"})
        flow.comment = f"pkgcache: 416 ({st.kind.value})"

    def route(self, flow: http.HTTPFlow, st: FlowState, job: Job) -> None:
        """Send this flow to the loopback file server, which streams the body from disk."""
        token = self.c.fileserver.register(job)
        req = flow.request
        st.role, st.original_url = Role.ROUTED, req.url
        flow.metadata["pkgcache_url"] = req.url
        flow.comment = f"pkgcache: {st.x_cache} ({st.kind.value}, streamed from disk)"
        flow.marked = MARKERS.get(st.x_cache, "")
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.c.fileserver.port
        req.path = PATH_PREFIX + token
        flow.server_conn.via = None  # never through an upstream proxy: the file server is ours, on loopback
        flow.metadata[OWN_ANSWER] = True  # its headers are ours, X-Cache included
        self.flows[flow.id] = st

    # -- following a download -----------------------------------------------------------

    async def lead_or_follow(self, flow: http.HTTPFlow, st: FlowState) -> bool:
        """Take the lead (True: the caller starts the download) or follow whoever has it (False)."""
        store, follow = self.storage.store, self.storage.settings.follow_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + follow
        # a download nginx fetches sends a waiting client nothing until it ends, and apt gives up on a server
        # that sends nothing for 30 s: such a client waits less, then goes upstream itself
        front_deadline = loop.time() + min(follow, FRONT_WAIT)
        while True:
            lock = store.try_lock(st.key)
            if lock is not None:
                entry = store.lookup(st.key)
                if entry is not None:  # committed while we waited
                    lock.release()
                    self.serve_entry(flow, st, entry, "HIT")
                    return False
                st.role, st.lock = Role.LEAD, lock
                return True
            flight = self.c.flights.get(st.key)
            header = flight.header if flight else store.read_partial_header(st.key)
            if header is not None and self._route_follower(flow, st, header, flight):
                return False
            if flight is not None and (flight.state() is FlightState.UNCACHEABLE or flight.relay is not None):
                return False  # the leader got something we do not store: go upstream like it did
            if loop.time() > (deadline if flight is None or not flight.by_front else front_deadline):
                log.warning("pkgcache: gave up waiting for the download of %s; proxying", st.url)
                return False
            if flight is not None:
                await flight.wait()
            else:
                await asyncio.sleep(0.02)

    def _open_partial(self, st: FlowState, header: dict[str, Any], flight: Flight | None) -> int | None:
        store = self.storage.store
        if flight is None:
            return store.open_live_partial(st.key, header)  # never a dead download's leftovers
        try:
            return os.open(store.partial_path(st.key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # committed or failed meanwhile: look again

    def _route_follower(self, flow: http.HTTPFlow, st: FlowState, header: dict[str, Any],
                        flight: Flight | None) -> bool:
        fd = self._open_partial(st, header, flight)
        if fd is None:
            return False
        total = header.get("length")
        progress = flight if flight is not None else RemoteProgress(self.storage.store, st.key, fd)
        headers = [(k, v) for k, v in header["headers"]] + [("X-Cache", "MISS")]
        status, offset, length = 200, 0, total
        try:
            rng = httpsem.parse_range(flow.request.headers.get("range"), total)
        except httpsem.Unsatisfiable:
            os.close(fd)
            self.respond_416(flow, st, total or 0)
            return True
        if rng is not None:
            status, offset = 206, rng.start
            length = rng.length if total is not None else None
            if total is not None:
                headers.append(("Content-Range", f"bytes {rng.start}-{rng.end}/{total}"))
        st.x_cache = "MISS"
        job = Job(status, REASONS[status], headers, fd, offset, length, progress)
        if flight is not None:
            flight.followers += 1

            def left(_sent: int, _ok: bool, flight: Flight = flight) -> None:
                flight.followers -= 1

            job.on_done = left
        count(self.c, st, "coalesced", from_cache=length or 0)
        self.route(flow, st, job)
        return True
