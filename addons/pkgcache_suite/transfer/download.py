"""Leading a download: watch upstream, admit the response, tee it to disk while it streams, commit or give up.

Whoever holds a key's lock leads.  The body is committed the moment its last
byte arrives, before that byte is passed on; a body that is short, wrong or
implausible is passed on unstored.  When the leading client leaves, the rest is
fetched here so followers and the cache still get it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, assert_never

from mitmproxy import http

from pkgcache_suite.background import Tasks
from pkgcache_suite.indexes.kinds import url_digest
from pkgcache_suite.offline.reachability import via_route
from pkgcache_suite.trust import is_tls_failure
from pkgcache_suite.policy import httpsem
from pkgcache_suite.policy.admission import admit, parse_length
from pkgcache_suite.policy.decide import Answer, answer
from pkgcache_suite.policy.rules import Kind
from pkgcache_suite.storage import Entry, Lock, StoreError
from pkgcache_suite.transfer.answers import Answers, count, take_client_headers
from pkgcache_suite.transfer.continuation import continue_download
from pkgcache_suite.transfer.diskguard import DiskGuard
from pkgcache_suite.transfer.flight import Flight, FlightState
from pkgcache_suite.transfer.state import MARKERS, FlowState, Role
from pkgcache_suite.transfer.signedindex import SignedIndexes
from pkgcache_suite.transfer.phase import FINAL, Event, Phase, client_left
from pkgcache_suite.transfer.tee import Tee
from pkgcache_suite.transfer.watchdog import Watchdog, Watched
from pkgcache_suite.units import human_size

if TYPE_CHECKING:
    from pkgcache_suite.context import CacheContext
    from pkgcache_suite.offline.reachability import Reachability
    from pkgcache_suite.transfer.aftercommit import AfterCommit
    from pkgcache_suite.storage.opened import OpenedStore

log = logging.getLogger("pkgcache")

INSPECT_MAX = 16 << 20  # under mitmweb, stored misses up to this size are kept with their flow for inspection


class Downloads:
    def __init__(self, shared: CacheContext, flows: dict[str, FlowState], answers: Answers, storage: OpenedStore,
                 reach: Reachability, after: AfterCommit) -> None:
        self.c, self.flows, self.answers = shared, flows, answers
        self.storage, self.reach = storage, reach
        self.after = after  # told of every committed body (an index refresh triggers checks)
        self.watchdog = Watchdog()
        self.diskguard = DiskGuard()
        self.signed = SignedIndexes(self)
        self.tasks = Tasks()

    # -- request side ---------------------------------------------------------------------

    def lead(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """This flow holds the lock: it fetches the file for everyone."""
        st.flight = self.new_flight(st.key)
        take_client_headers(flow, st)
        self.flows[flow.id] = st
        self._watch(flow, st)

    def revalidate(self, flow: http.HTTPFlow, st: FlowState, entry: Entry, lock: Lock) -> None:
        """Ask upstream whether the cached copy is current (RFC 9111 section 4.3.1)."""
        st.role, st.lock, st.entry = Role.REVALIDATE, lock, entry
        st.flight = self.new_flight(st.key)
        take_client_headers(flow, st)
        if entry.etag:
            flow.request.headers["If-None-Match"] = entry.etag
        if entry.last_modified or entry.validated:
            # a copy nobody here ever validated (one a stick brought) is not dated by its own word: the
            # origin sends its page whole, never a 304 that would confirm the stick's
            flow.request.headers["If-Modified-Since"] = httpsem.last_modified(entry)
        self.flows[flow.id] = st
        self._watch(flow, st)

    def _watch(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Leads and revalidations are watched: a stalled upstream is cut instead of holding everyone."""
        def timed_out(_why: str) -> None:
            if st.phase not in FINAL:
                st.step(Event.STALLED)

        s = self.storage.settings  # the current bounds: options may change under mitmweb
        self.watchdog.connect_timeout, self.watchdog.idle_timeout = s.connect_timeout, s.idle_timeout
        self.watchdog.watch(flow, st.url, timed_out)

    def new_flight(self, key: str) -> Flight:
        flight = Flight(key)
        self.c.flights[key] = flight
        return flight

    # -- response headers -------------------------------------------------------------------

    def on_headers(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response) -> None:
        self.reach.mark(flow.request.host, flow.request.port, True, via_route(flow.server_conn.via))
        watched = self.watchdog.watched.get(flow.id)
        if watched is not None:
            watched.progress()
        what = answer(st.role is Role.REVALIDATE, resp.status_code, resp.headers.get("content-encoding"))
        match what:
            case Answer.STORE if self.signed.applies(flow, st):
                if why := self.signed.unheld(resp):
                    log.warning("pkgcache: %s: not stored: %s", st.url, why)
                    self._pass(flow, st, resp, f"not stored: {why}")
                else:
                    self.signed.hold(st, resp)
            case Answer.STORE:
                why = self._start(flow, st, watched)
                if why is not None:
                    log.warning("pkgcache: %s: not stored: %s", st.url, why)
                    self._pass(flow, st, resp, f"not stored: {why}")
            case Answer.PASS:
                if resp.status_code == 404 and st.role is Role.LEAD:
                    self.storage.store.remember_missing(st.key, time.time())
                self._pass(flow, st, resp, f"HTTP {resp.status_code} passed on, not stored")
            case Answer.REVALIDATED | Answer.STALE:
                st.step(Event.CURRENT)  # answered from the cache in response(); the body (if any) is small
            case _:
                assert_never(what)

    def _pass(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response, what: str) -> None:
        st.step(Event.UNSTORABLE)
        self.finish(st, FlightState.UNCACHEABLE)
        self.flows.pop(flow.id, None)
        self.watchdog.unwatch(flow.id)
        resp.stream = True
        resp.headers["X-Cache"] = "MISS"
        flow.comment = f"pkgcache: {what} ({st.kind.value})"
        count(self.c, st, "pass")

    def _start(self, flow: http.HTTPFlow, st: FlowState, watched: Watched | None) -> str | None:
        """Start storing the body while it streams; returns why not, when it must not be stored."""
        store, resp = self.storage.store, flow.response
        assert resp is not None and st.flight is not None
        ref = store.expected(st.key) if st.kind is Kind.IMMUTABLE else None
        verdict = admit(st.kind.value, {k.lower(): v for k, v in resp.headers.items()}, resp.http_version,
                        url_digest(st.url), ref)
        if not verdict.store:
            return verdict.why
        st.expected = parse_length(resp.headers.get("content-length"))
        min_free = self.storage.settings.min_free
        if full := self.diskguard.refuse(store.root, min_free, st.expected):
            return full
        st.must_length, st.must_sha256 = verdict.length, verdict.sha256
        keep = [(k, resp.headers[k]) for k in ("content-type", "last-modified", "etag") if k in resp.headers]
        header = {"url": st.url, "length": st.expected, "headers": keep}
        writer = store.writer(st.key, st.url, st.kind.value)
        if st.kind is Kind.IMMUTABLE and (check := store.expected_check(st.key)):
            writer.hash_too(check)
        writer.begin(header)
        if writer.failed:
            log.error("pkgcache: %s: %s; proxying without caching", st.url, writer.failed)
            st.step(Event.BROKEN)
            self.finish(st, FlightState.FAILED)
            self.flows.pop(flow.id, None)
            self.watchdog.unwatch(flow.id)
            resp.stream = True
            return None
        st.writer = writer
        st.step(Event.STORABLE)
        st.flight.set_state(FlightState.RUNNING, header)
        loop, flight = asyncio.get_running_loop(), st.flight

        def wake_followers() -> None:  # called from the writer thread
            loop.call_soon_threadsafe(flight.notify)

        writer.on_progress = wake_followers
        rng = self._client_slice(st)
        if rng is not None:
            resp.status_code, resp.reason = 206, "Partial Content"
            resp.headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{st.expected}"
            resp.headers["Content-Length"] = str(rng.length)
        st.x_cache = "MISS"
        resp.headers["X-Cache"] = "MISS"
        flow.comment = f"pkgcache: MISS ({st.kind.value}, stored while streaming)"
        flow.marked = MARKERS["MISS"]
        st.tee = Tee(writer, st.flight, rng, st.expected, lambda: self.commit(flow, st),
                     sniff_html=st.kind is Kind.IMMUTABLE, on_progress=watched.progress if watched else None)
        st.validator = resp.headers.get("etag") or resp.headers.get("last-modified")
        resp.stream = st.tee
        return None

    @staticmethod
    def _client_slice(st: FlowState) -> httpsem.ByteRange | None:
        """A Range on a miss: the whole file is stored, the client gets its slice."""
        if not st.client.get("range") or st.expected is None or "if-range" in st.client:
            return None
        try:
            return httpsem.parse_range(st.client["range"], st.expected)
        except httpsem.Unsatisfiable:
            return None  # whole body; the client learns the size and can ask again

    # -- the end of a response ----------------------------------------------------------------

    def on_response(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response) -> None:
        if st.writer is not None:
            self.commit(flow, st)  # no-op when the Tee already committed at the last byte
            if self.c.inspecting:
                self._show_size(flow, st)
            return
        if st.role is not Role.REVALIDATE or st.entry is None:
            self.finish(st, FlightState.UNCACHEABLE)
            return
        store = self.storage.store
        if resp.status_code == 304:
            store.touch(st.key, validated=time.time())
            x_cache = "REVALIDATED"
        else:
            log.warning("pkgcache: upstream said %s for %s; serving the cached copy", resp.status_code, st.url)
            x_cache = "STALE"
        self.finish(st, FlightState.UNCACHEABLE)
        try:
            self.answers.serve_entry(flow, st, st.entry, x_cache, in_memory=True)
        except (OSError, StoreError) as e:
            log.error("pkgcache: cannot read cached %s: %s", st.url, e)
            return
        if x_cache == "STALE" and flow.response is not None:
            flow.response.headers["Warning"] = '110 pkgcache "Response is Stale"'

    def commit(self, flow: http.HTTPFlow, st: FlowState) -> None:
        writer = st.writer
        if writer is None or st.phase in FINAL:
            return  # committed (or refused) already: the last byte and the end of the response both get here
        assert flow.response is not None
        h = flow.response.headers
        meta: dict[str, Any] = {"content_type": h.get("content-type", "application/octet-stream"),
                                "last_modified": h.get("last-modified"), "etag": h.get("etag")}
        if st.must_sha256:
            meta["expect_sha256"] = st.must_sha256
        if st.kind is Kind.IMMUTABLE and (check := self.storage.store.expected_check(st.key)):
            meta["expect_check"] = check
        length = st.must_length if st.must_length is not None else st.expected
        entry = writer.commit(length, meta) if writer.failed is None else None
        if entry is None:
            if st.tee is not None and st.tee.relay is not None:
                st.tee.relay.finished = True  # the stream ended whole: followers may finish from the relay
            log.error("pkgcache: not caching %s: %s", st.url, writer.failed)
            st.step(Event.BROKEN)
            count(self.c, st, "failed", from_upstream=writer.written)
            self.finish(st, FlightState.FAILED)
            return
        st.step(Event.COMPLETE)
        count(self.c, st, "miss", from_upstream=writer.written)
        st.entry = entry
        self.finish(st, FlightState.DONE)
        self.storage.store.forget_missing(st.key)
        self.after.stored(entry)

    def _show_size(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Under mitmweb, a streamed body would be listed with size 0: show the stored file instead, read back
        from disk once the client has it, when it is small enough to keep with the flow; larger ones carry their
        size in the comment."""
        store, entry, resp = self.storage.store, st.entry, flow.response
        if entry is None or resp is None or not st.committed:
            return
        flow.comment = f"{flow.comment}, {human_size(entry.length)}"
        if entry.length > INSPECT_MAX:
            return
        try:
            resp.stream = False
            resp.raw_content = store.body_path(st.key).read_bytes()
        except (OSError, StoreError) as e:
            log.debug("pkgcache: %s not shown in the flow list: %s", st.url, e)

    def on_error(self, flow: http.HTTPFlow, st: FlowState) -> bool:
        """The flow broke.  Returns True when its URL belongs on the wanted list (a lead whose upstream
        turned out unreachable, in offline=auto): the addon records it."""
        wanted = False
        if st.tee is not None and st.tee.relay is not None:
            st.tee.relay.broken = True
        reach = self.reach
        msg = flow.error.msg if flow.error else "unknown error"
        if is_tls_failure(msg):
            # a certificate nobody here trusts says nothing about the route: never offline, never wanted
            log.error("pkgcache: %s: upstream TLS failed (%s); name the CA with ssl_verify_upstream_trusted_ca "
                      "or SSL_CERT_FILE", st.url, msg)
        elif flow.response is None and flow.server_conn.timestamp_tcp_setup is None:
            # upstream unreachable: the client already got a 502, but the next request is handled offline,
            # and a miss is remembered as if it had been one
            reach.mark(flow.request.host, flow.request.port, False, via_route(flow.server_conn.via),
                       flow.error.msg if flow.error else "connection failed")
            wanted = st.role is Role.LEAD and reach.mode == "auto"
        if st.phase in FINAL:
            return wanted  # the whole body arrived and is stored (or was refused); only the client went away
        if (st.phase is Phase.STREAMING and st.writer is not None and st.writer.failed is None
                and st.tee is not None and not st.tee.dead
                and client_left(msg)):
            st.step(Event.CLIENT_LEFT)
            self._continue(flow, st)
            return wanted
        if st.writer is not None:
            st.writer.fail(f"upstream transfer broke: {msg}")
            log.warning("pkgcache: %s: download failed after %d bytes (%s); nothing stored",
                        st.url, st.writer.written, msg)
        st.step(Event.BROKEN)
        count(self.c, st, "failed")
        self.finish(st, FlightState.FAILED)
        return wanted

    def _continue(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """The leading client left: fetch the rest ourselves so followers (and the cache) still get it."""
        tee = st.tee
        assert tee is not None
        tee.rng = None  # nobody is reading this flow's slice any more
        via = flow.server_conn.via
        proxy = f"http://{via[1][0]}:{via[1][1]}" if via else None
        log.info("pkgcache: client of %s left after %d bytes; finishing the download for the cache and followers",
                 st.url, tee.pos)

        async def run() -> None:
            why = await continue_download(flow.request.url, tee.pos, st.validator, tee, st.expected, proxy,
                                          (self.storage.settings.connect_timeout, self.storage.settings.idle_timeout))
            if why is None and st.phase not in FINAL:
                why = st.writer.failed if st.writer and st.writer.failed else "body incomplete"
            if why is not None and st.phase not in FINAL:
                log.warning("pkgcache: %s: could not finish the download (%s); nothing stored", st.url, why)
                st.step(Event.BROKEN)
                count(self.c, st, "failed")
                self.finish(st, FlightState.FAILED)

        self.tasks.start(run(), f"finish the download of {st.url}")

    def finish(self, st: FlowState, state: FlightState) -> None:
        """End this flow's part in a download: tell followers, then let go of the lock."""
        if st.flight is not None:
            if self.c.flights.get(st.key) is st.flight:
                del self.c.flights[st.key]
            st.flight.set_state(state)
            st.flight = None
        if st.writer is not None and state is not FlightState.DONE:
            st.writer.abort()
        if st.lock is not None:
            st.lock.release()
            st.lock = None

    def stop(self) -> None:
        self.watchdog.stop()
        self.tasks.cancel_all()
