"""The cache policy addon: decides per request whether to answer from disk, lead a download,
follow someone else's, revalidate an index, or stay out of the way.

Hook budget: one dict lookup and one regex scan for requests we do not cache,
because mitmproxy already spends much of its time dispatching hooks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, exceptions, http

from pkgcache_suite.policy import httpsem

from pkgcache_suite.proxy import report

from pkgcache_suite.proxy import options as settings_mod
from pkgcache_suite.proxy.context import CacheContext
from pkgcache_suite.transfer.fileserver import PATH_PREFIX, Job
from pkgcache_suite.transfer.flight import Flight, RemoteProgress
from pkgcache_suite.proxy.flowinfo import client_address
from pkgcache_suite.policy.rules import Classifier, Kind, RulesError
from pkgcache_suite.stats import Stats
from pkgcache_suite.storage import CacheStore, Entry, Lock, StoreError, Writer, reconcile, sweep_partials
from pkgcache_suite.policy.admission import admit, parse_length
from pkgcache_suite.transfer.relay import Relay
from pkgcache_suite.transfer.watchdog import Watchdog, Watched
from pkgcache_suite.proxy.router import META_KEY_HOST, META_NOCACHE, META_REPO, META_REPO_PATH
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for, repo_key

log = logging.getLogger("pkgcache")

# Request headers that would make upstream answer something other than the whole body.
_CLIENT_ONLY = ("range", "if-range", "if-none-match", "if-modified-since", "accept-encoding")
_BY_HASH = re.compile(r"/by-hash/SHA256/([0-9a-fA-F]{64})$")
_REASONS = {200: "OK", 206: "Partial Content"}
HOUSEKEEPING_INTERVAL = 300.0
# indexes that list package files with their sizes and digests (Debian, RPM)
_INDEX_KEY = re.compile(r"/dists/.*/(Packages|Sources)[^/]*$|/dists/.*/by-hash/SHA256/[0-9a-f]+$|/repodata/[^/]*primary")


@dataclass
class FlowState:
    """What pkgcache decided for one flow; kept in the addon, not in flow.metadata, so flows stay serialisable."""

    key: str
    url: str
    kind: Kind
    host: str
    role: str = "pass"  # lead | revalidate | routed
    lock: Lock | None = None
    flight: Flight | None = None
    entry: Entry | None = None
    client: dict[str, str] = field(default_factory=dict)  # the client's own Range/conditional headers
    writer: Writer | None = None
    expected: int | None = None
    original_url: str | None = None
    x_cache: str = ""
    committed: bool = False
    tee: Tee | None = None
    validator: str | None = None  # ETag or Last-Modified of the body being downloaded, for If-Range
    must_length: int | None = None  # the size the body must have to be committed
    must_sha256: str | None = None  # the digest it must have (by-hash name, or a cached index)
    timed_out: bool = False  # the upstream watchdog cut it


def _url(req: http.Request, host: str) -> str:
    """The request's URL with the host its cache key names (never the client's Host header)."""
    if host == req.host:
        return req.url
    default = 443 if req.scheme == "https" else 80
    return f"{req.scheme}://{host}{'' if req.port == default else f':{req.port}'}{req.path}"


def _looks_like_html(chunk: bytes) -> bool:
    """An HTML document where a package file was expected: no package format starts with markup."""
    head = chunk[:512].lstrip().lower()
    return head.startswith(b"<") and (head.startswith(b"<!doctype html") or b"<html" in head)


class Tee:
    """The miss path's stream callable: every chunk goes to the client and to the partial file.

    The body is committed the moment its last byte arrives, before that byte is
    handed on, so a client that has the whole body can count on the next request
    being a hit.  With a client Range on a miss we still download (and store)
    the whole body and hand the client only its slice.
    """

    def __init__(self, writer: Writer, flight: Flight, rng: httpsem.ByteRange | None,
                 expected: int | None, on_complete: Callable[[], None], sniff_html: bool = False,
                 on_progress: Callable[[], None] | None = None) -> None:
        self.writer, self.flight, self.rng = writer, flight, rng
        self.expected, self.on_complete = expected, on_complete
        self.sniff_html = sniff_html  # a package file must not be an HTML page (a captive portal's)
        self.on_progress = on_progress
        self.pos = 0
        self.dead = False
        self.relay: Relay | None = None

    def __call__(self, chunk: bytes) -> bytes:
        if self.on_progress is not None:
            self.on_progress()
        if not chunk:
            if self.expected is None and not self.dead:
                self.on_complete()
            return b""
        start = self.pos
        self.pos += len(chunk)
        if self.sniff_html and start == 0 and _looks_like_html(chunk):
            self.writer.fail("the body is an HTML page, not a package file (a captive portal?)")
        if self.relay is not None:
            self.relay.append(chunk)
            self.flight.notify()
        elif not self.dead:
            self.writer.write(chunk)
            if self.writer.failed is not None:
                self._stop_writing()
            elif self.pos == self.expected:
                self.on_complete()
        if self.rng is None:
            return chunk
        lo = max(start, self.rng.start)
        hi = min(self.pos, self.rng.end + 1)
        return chunk[lo - start:hi - start] if hi > lo else b""

    def _stop_writing(self) -> None:
        """The partial file cannot be written: followers get the rest of the stream from a relay."""
        self.dead = True
        log.error("pkgcache: %s: %s; continuing without caching", self.writer.url, self.writer.failed)
        self.writer.abort()  # free the space now: the disk may be full
        if self.flight.followers and not self.sniff_failed():
            self.relay = Relay(self.writer.written, self.writer.unwritten, self.flight.followers)
            self.writer.unwritten = []
            self.flight.relay = self.relay
            self.flight.notify()
        else:
            self.flight.set_state("failed")

    def sniff_failed(self) -> bool:
        return bool(self.writer.failed and "HTML page" in self.writer.failed)


class CacheCore:
    def __init__(self, shared: CacheContext) -> None:
        self.c = shared
        self.flows: dict[str, FlowState] = {}
        self._stale_task: asyncio.Task[None] | None = None
        self._continuations: set[asyncio.Task[None]] = set()
        self._stale_pending: list[str] = []
        self._stale_roots: set[str] = set()
        self.csrf = secrets.token_urlsafe(16)
        self.watchdog = Watchdog()
        self._housekeeping: asyncio.Task[None] | None = None

    # -- mitmproxy lifecycle -------------------------------------------------------

    def load(self, loader: Any) -> None:
        for name, typ, default, help_ in settings_mod.OPTIONS:
            loader.add_option(name, typ, default, help_)

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("pkgcache_") for name in updated):
            return
        s = settings_mod.parse(ctx.options)
        try:
            classifier = Classifier(s.rules_dir, s.filter_file)
        except RulesError as e:
            raise exceptions.OptionsError(str(e)) from None
        if self.c.store is None or self.c.store.root != s.cache_dir:
            try:
                store = CacheStore(s.cache_dir)
            except StoreError as e:
                raise exceptions.OptionsError(str(e)) from None
            if self.c.store is not None:
                self.c.store.close()
            self.c.store = store
        self.c.settings, self.c.classifier = s, classifier
        self.watchdog.connect_timeout, self.watchdog.idle_timeout = s.connect_timeout, s.idle_timeout
        log.info("pkgcache: cache at %s", s.cache_dir)

    async def running(self) -> None:
        if self.c.fileserver.server is None:
            await self.c.fileserver.start()
        if self._housekeeping is None:
            self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house(),
                                                                        name="pkgcache housekeeping")

    async def _keep_house(self) -> None:
        """At start: make the tree and the index agree and learn what cached indexes list; then, now and
        every few minutes, remove what dead downloads left behind."""
        from pkgcache_suite.maintenance.tasks import record_all_refs

        first = True
        while True:
            store = self.c.store
            if store is not None:
                try:
                    if first:
                        if not len(store.refs):
                            await asyncio.to_thread(record_all_refs, store)
                        counts = await asyncio.to_thread(reconcile, store)
                        if any(counts.values()):
                            log.info("pkgcache: cache tree checked against its index: %s", counts)
                    removed = await asyncio.to_thread(sweep_partials, store)
                    if removed:
                        log.info("pkgcache: removed %d leftovers of interrupted downloads", len(removed))
                except Exception:
                    log.exception("pkgcache: housekeeping failed")
            await asyncio.sleep(5.0 if first else HOUSEKEEPING_INTERVAL)  # again soon: what was too young
            first = False

    async def done(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.watchdog.stop()
        await self.c.fileserver.stop()
        for st in list(self.flows.values()):
            self._finish(st, "failed")
        if self.c.store:
            self.c.store.close()

    # -- request ----------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        """Guarded: whatever goes wrong, the flow is left on the safe path (proxied, streamed, not stored)."""
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        try:
            await self._request(flow)
        except Exception:
            log.exception("pkgcache: %s: internal error; proxying without caching", flow.request.url)
            st = self.flows.pop(flow.id, None)
            if st is not None:
                self._finish(st, "failed")
            self.watchdog.unwatch(flow.id)

    async def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if report.is_report_target(req):
            await self._report(flow)
            return
        store, classifier = self.c.store, self.c.classifier
        if store is None or classifier is None or req.method not in ("GET", "HEAD"):
            return
        if flow.metadata.get(META_NOCACHE):
            return
        host = flow.metadata.get(META_KEY_HOST) or req.host
        url = _url(req, host)
        kind = classifier.classify(url, req.path)
        if kind is Kind.PASS:
            return
        try:
            repo = flow.metadata.get(META_REPO)
            if repo is not None:
                query = "?" + req.path.split("?", 1)[1] if "?" in req.path else ""
                key = repo_key(repo, flow.metadata[META_REPO_PATH] + query)
            else:
                key = key_for(req.scheme, host, req.port, req.path)
        except (UnsafeURL, UnicodeDecodeError) as e:
            log.warning("pkgcache: refused %s: %s", url, e)
            flow.response = http.Response.make(
                400, f"pkgcache: refusing unsafe URL: {e}\n".encode(), {"Content-Type": "text/plain"}
            )
            return
        st = FlowState(key=key, url=url, kind=kind, host=host)
        try:
            entry = store.lookup(key)
            if entry is not None and kind is Kind.IMMUTABLE and self._stale_roots \
                    and any(key.startswith(r + "/") for r in self._stale_roots) \
                    and self._stale_task is not None and not self._stale_task.done():
                # a refreshed index is being checked for re-published files: this may be one of them
                try:
                    await asyncio.wait_for(asyncio.shield(self._stale_task), 30)
                except (TimeoutError, asyncio.TimeoutError):
                    pass
                entry = store.lookup(key)
            if entry is not None:
                if req.method == "HEAD" or kind is Kind.IMMUTABLE:
                    self._serve_entry(flow, st, entry, "HIT")
                    return
                if await self._offline(flow):
                    self._serve_entry(flow, st, entry, "STALE")
                    if flow.response is not None:
                        flow.response.headers["Warning"] = '111 pkgcache "Revalidation Failed"'
                    return
                lock = store.try_lock(key)
                if lock is None:  # someone is revalidating it right now: theirs is fresh enough
                    self._serve_entry(flow, st, entry, "HIT")
                    return
                st.role, st.lock, st.entry = "revalidate", lock, entry
                st.flight = self._new_flight(key)
                self._take_client_headers(flow, st)
                if entry.etag:
                    req.headers["If-None-Match"] = entry.etag
                req.headers["If-Modified-Since"] = httpsem.last_modified(entry)
                self.flows[flow.id] = st
                self._watch(flow, st)
                return
            if await self._offline(flow):
                self._offline_miss(flow, st)
                return
            if req.method == "HEAD":
                return
            await self._lead_or_follow(flow, st)
        except StoreError as e:
            log.error("pkgcache: cache unusable for %s (%s); proxying without caching", url, e)
            self._finish(st, "failed")

    async def _offline(self, flow: http.HTTPFlow) -> bool:
        r = self.c.reachability
        return r is not None and await r.offline(flow.request.host, flow.request.port)

    def _offline_miss(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Answer 404 (package managers skip those) and remember the URL for `pkgcache fetch`."""
        wanted = self.c.wanted
        where = "the wanted list"
        if wanted is not None:
            self._record_wanted(flow, st)
            where = str(wanted.datastore.wanted_path if wanted.datastore else wanted.local_path)
        body = (f"pkgcache: offline, and {st.url} is not cached.\n"
                f"It was recorded in {where} for fetching with `pkgcache fetch`.\n")
        flow.response = http.Response.make(404, body.encode(), {"Content-Type": "text/plain", "X-Cache": "MISS"})
        flow.comment = f"pkgcache: offline miss, recorded ({st.kind.value})"
        self._count(st, "offline_miss")

    def _record_wanted(self, flow: http.HTTPFlow, st: FlowState) -> None:
        if self.c.wanted is not None:
            headers = {k.lower(): v for k, v in flow.request.headers.items()}
            self.c.wanted.record(st.url, client_address(flow, ""), headers, st.kind.value)

    def _watch(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Leads and revalidations are watched: a stalled upstream is cut instead of holding everyone."""
        def timed_out(_why: str) -> None:
            st.timed_out = True

        self.watchdog.watch(flow, st.url, timed_out)

    def _new_flight(self, key: str) -> Flight:
        flight = Flight(key)
        self.c.flights[key] = flight
        return flight

    def _take_client_headers(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Ask upstream for the whole identity-encoded body; remember what the client asked for."""
        h = flow.request.headers
        for name in _CLIENT_ONLY:
            if name in h:
                st.client[name] = h[name]
                del h[name]

    async def _lead_or_follow(self, flow: http.HTTPFlow, st: FlowState) -> None:
        store = self.c.store
        assert store is not None and self.c.settings is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.c.settings.follow_timeout
        while True:
            lock = store.try_lock(st.key)
            if lock is not None:
                entry = store.lookup(st.key)
                if entry is not None:  # committed while we waited
                    lock.release()
                    self._serve_entry(flow, st, entry, "HIT")
                    return
                st.role, st.lock = "lead", lock
                st.flight = self._new_flight(st.key)
                self._take_client_headers(flow, st)
                self.flows[flow.id] = st
                self._watch(flow, st)
                return
            flight = self.c.flights.get(st.key)
            header = flight.header if flight else store.read_partial_header(st.key)
            if header is not None and self._route_follower(flow, st, header, flight):
                return
            if flight is not None and (flight.state() == "uncacheable" or flight.relay is not None):
                return  # the leader got something we do not store: go upstream like it did
            if loop.time() > deadline:
                log.warning("pkgcache: gave up waiting for the download of %s; proxying", st.url)
                return
            if flight is not None:
                await flight.wait()
            else:
                await asyncio.sleep(0.02)

    def _route_follower(self, flow: http.HTTPFlow, st: FlowState, header: dict[str, Any], flight: Flight | None) -> bool:
        store = self.c.store
        assert store is not None
        if flight is not None:
            try:
                fd = os.open(store.partial_path(st.key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                return False  # committed or failed meanwhile: look again
        else:
            live = store.open_live_partial(st.key, header)
            if live is None:
                return False  # a dead download's leftovers, or one just starting: look again (or lead)
            fd = live
        total = header.get("length")
        progress = flight if flight is not None else RemoteProgress(store, st.key, fd)
        headers = [(k, v) for k, v in header["headers"]] + [("X-Cache", "MISS")]
        status, offset, length = 200, 0, total
        try:
            rng = httpsem.parse_range(flow.request.headers.get("range"), total)
        except httpsem.Unsatisfiable:
            os.close(fd)
            self._respond_416(flow, st, total or 0)
            return True
        if rng is not None:
            status, offset = 206, rng.start
            length = rng.length if total is not None else None
            if total is not None:
                headers.append(("Content-Range", f"bytes {rng.start}-{rng.end}/{total}"))
        st.x_cache = "MISS"
        job = Job(status, _REASONS[status], headers, fd, offset, length, progress)
        if flight is not None:
            flight.followers += 1

            def left(_sent: int, _ok: bool, flight: Flight = flight) -> None:
                flight.followers -= 1

            job.on_done = left
        self._count(st, "coalesced", from_cache=length or 0)
        self._route(flow, st, job)
        return True

    # -- answering from the cache -------------------------------------------------

    def _serve_entry(self, flow: http.HTTPFlow, st: FlowState, entry: Entry, x_cache: str, in_memory: bool = False) -> None:
        """Answer a request from a committed body: 304, 416, HEAD, 206 or 200, from memory or routed."""
        store, s = self.c.store, self.c.settings
        assert store is not None and s is not None
        req = flow.request
        h = st.client if st.role == "revalidate" else req.headers  # ours were added for upstream
        headers = httpsem.entry_headers(entry, x_cache)
        event = {"HIT": "hit", "REVALIDATED": "revalidated", "STALE": "stale"}[x_cache]
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
                self._respond_416(flow, st, entry.length)
                return
        status, offset, length = (206, rng.start, rng.length) if rng else (200, 0, entry.length)
        if rng:
            headers.append(("Content-Range", f"bytes {rng.start}-{rng.end}/{entry.length}"))
        if req.method == "HEAD":
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
        self._count(st, event, from_cache=length)
        self._route(flow, st, Job(status, _REASONS[status], headers, fd, offset, length))

    def _count(self, st: FlowState, event: str, from_cache: int = 0, from_upstream: int = 0) -> None:
        self.c.stats.count(event, st.kind.value, st.host, from_cache, from_upstream, repo=st.key.split("/", 1)[0])

    def _set_response(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response, event: str, nbytes: int) -> None:
        flow.response = resp
        flow.comment = f"pkgcache: {st.x_cache} ({st.kind.value})"
        self._count(st, event, from_cache=nbytes)

    def _respond_416(self, flow: http.HTTPFlow, st: FlowState, size: int) -> None:
        resp = http.Response.make(416, b"", {"Content-Range": f"bytes */{size}", "X-Cache": "HIT"})
        flow.response = resp
        flow.comment = f"pkgcache: 416 ({st.kind.value})"

    def _route(self, flow: http.HTTPFlow, st: FlowState, job: Job) -> None:
        """Send this flow to the loopback file server, which streams the body from disk."""
        token = self.c.fileserver.register(job)
        req = flow.request
        st.role, st.original_url = "routed", req.url
        flow.metadata["pkgcache_url"] = req.url
        flow.comment = f"pkgcache: {st.x_cache} ({st.kind.value}, streamed from disk)"
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.c.fileserver.port
        req.path = PATH_PREFIX + token
        flow.server_conn.via = None  # never through an upstream proxy: the file server is ours, on loopback
        self.flows[flow.id] = st

    # -- response ---------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Guarded: the body is streamed unless we keep it, whatever goes wrong deciding."""
        resp = flow.response
        if resp is None or flow.error is not None:
            return
        try:
            self._responseheaders(flow, resp)
        except Exception:
            log.exception("pkgcache: %s: internal error; passing the response on unstored", flow.request.url)
            st = self.flows.pop(flow.id, None)
            if st is not None:
                self._finish(st, "failed")
            self.watchdog.unwatch(flow.id)
            resp.stream = True

    def _responseheaders(self, flow: http.HTTPFlow, resp: http.Response) -> None:
        st = self.flows.get(flow.id)
        if st is None:
            resp.stream = True  # pass-through: never buffer a body we do not keep
            if not flow.comment:
                flow.comment = "pkgcache: passed through (not cached)"
            return
        if st.role == "routed":
            resp.stream = True
            if st.original_url:
                flow.request.url = st.original_url  # show the real URL in mitmweb and logs
            return
        if self.c.reachability is not None:
            self.c.reachability.mark(flow.request.host, flow.request.port, True)
        watched = self.watchdog.watched.get(flow.id)
        if watched is not None:
            watched.progress()
        if resp.status_code == 200 and "content-encoding" not in resp.headers:
            why = self._start_download(flow, st, watched)
            if why is None:
                return
            log.warning("pkgcache: %s: not stored: %s", st.url, why)
            self._pass(flow, st, resp, f"not stored: {why}")
            return
        if st.role == "revalidate" and (resp.status_code == 304 or resp.status_code >= 500):
            return  # answered from the cache in response(); the body (if any) is small
        self._pass(flow, st, resp, f"HTTP {resp.status_code} passed on, not stored")

    def _pass(self, flow: http.HTTPFlow, st: FlowState, resp: http.Response, what: str) -> None:
        self._finish(st, "uncacheable")
        self.flows.pop(flow.id, None)
        self.watchdog.unwatch(flow.id)
        resp.stream = True
        resp.headers["X-Cache"] = "MISS"
        flow.comment = f"pkgcache: {what} ({st.kind.value})"
        self._count(st, "pass")

    def _start_download(self, flow: http.HTTPFlow, st: FlowState, watched: Watched | None) -> str | None:
        """Start storing the body while it streams; returns why not, when it must not be stored."""
        store, resp = self.c.store, flow.response
        assert store is not None and resp is not None and st.flight is not None
        m = _BY_HASH.search(st.url)
        ref = store.expected(st.key) if st.kind is Kind.IMMUTABLE else None
        verdict = admit(st.kind.value, {k.lower(): v for k, v in resp.headers.items()}, resp.http_version,
                        m.group(1) if m else None, ref)
        if not verdict.store:
            return verdict.why
        st.expected = parse_length(resp.headers.get("content-length"))
        st.must_length, st.must_sha256 = verdict.length, verdict.sha256
        keep = [(k, resp.headers[k]) for k in ("content-type", "last-modified", "etag") if k in resp.headers]
        header = {"url": st.url, "length": st.expected, "headers": keep}
        writer = store.writer(st.key, st.url, st.kind.value)
        writer.begin(header)
        if writer.failed:
            log.error("pkgcache: %s: %s; proxying without caching", st.url, writer.failed)
            self._finish(st, "failed")
            self.flows.pop(flow.id, None)
            self.watchdog.unwatch(flow.id)
            resp.stream = True
            return None
        st.writer = writer
        st.flight.set_state("running", header)
        loop, flight = asyncio.get_running_loop(), st.flight

        def wake_followers() -> None:  # called from the writer thread
            loop.call_soon_threadsafe(flight.notify)

        writer.on_progress = wake_followers
        rng = None
        if st.client.get("range") and st.expected is not None and "if-range" not in st.client:
            try:
                rng = httpsem.parse_range(st.client["range"], st.expected)
            except httpsem.Unsatisfiable:
                rng = None  # whole body; the client learns the size and can ask again
        if rng is not None:
            resp.status_code, resp.reason = 206, "Partial Content"
            resp.headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{st.expected}"
            resp.headers["Content-Length"] = str(rng.length)
        st.x_cache = "MISS"
        resp.headers["X-Cache"] = "MISS"
        flow.comment = f"pkgcache: MISS ({st.kind.value}, stored while streaming)"
        st.tee = Tee(writer, st.flight, rng, st.expected, lambda: self._commit(flow, st),
                     sniff_html=st.kind is Kind.IMMUTABLE, on_progress=watched.progress if watched else None)
        st.validator = resp.headers.get("etag") or resp.headers.get("last-modified")
        resp.stream = st.tee
        return None

    def response(self, flow: http.HTTPFlow) -> None:
        self.watchdog.unwatch(flow.id)
        st = self.flows.pop(flow.id, None)
        if st is None or st.role == "routed":
            return
        resp = flow.response
        assert resp is not None
        if st.writer is not None:
            self._commit(flow, st)  # no-op when the Tee already committed at the last byte
            return
        if st.role == "revalidate" and st.entry is not None:
            store = self.c.store
            assert store is not None
            if resp.status_code == 304:
                store.touch(st.key, validated=time.time())
                x_cache = "REVALIDATED"
            else:
                log.warning("pkgcache: upstream said %s for %s; serving the cached copy", resp.status_code, st.url)
                x_cache = "STALE"
            self._finish(st, "uncacheable")
            try:
                self._serve_entry(flow, st, st.entry, x_cache, in_memory=True)
            except (OSError, StoreError) as e:
                log.error("pkgcache: cannot read cached %s: %s", st.url, e)
                return
            if x_cache == "STALE" and flow.response is not None:
                flow.response.headers["Warning"] = '110 pkgcache "Response is Stale"'
            return
        self._finish(st, "uncacheable")

    def _commit(self, flow: http.HTTPFlow, st: FlowState) -> None:
        writer = st.writer
        if writer is None or st.committed:
            return
        st.committed = True
        assert flow.response is not None
        h = flow.response.headers
        meta: dict[str, Any] = {"content_type": h.get("content-type", "application/octet-stream")}
        meta["last_modified"] = h.get("last-modified")
        meta["etag"] = h.get("etag")
        if st.must_sha256:
            meta["expect_sha256"] = st.must_sha256
        length = st.must_length if st.must_length is not None else st.expected
        entry = writer.commit(length, meta) if writer.failed is None else None
        nbytes = writer.written
        if entry is None:
            if st.tee is not None and st.tee.relay is not None:
                st.tee.relay.finished = True  # the stream ended whole: followers may finish from the relay
            log.error("pkgcache: not caching %s: %s", st.url, writer.failed)
            self._count(st, "failed", from_upstream=nbytes)
            self._finish(st, "failed")
            return
        self._count(st, "miss", from_upstream=nbytes)
        self._finish(st, "done")
        if _INDEX_KEY.search(st.key):
            self._schedule_stale_check(st.key)

    def error(self, flow: http.HTTPFlow) -> None:
        self.watchdog.unwatch(flow.id)
        st = self.flows.pop(flow.id, None)
        if st is None or st.role == "routed":
            return
        if st.tee is not None and st.tee.relay is not None:
            st.tee.relay.broken = True
        if flow.response is None and self.c.reachability is not None and flow.server_conn.timestamp_tcp_setup is None:
            # upstream unreachable: the client already got a 502, but the next request is handled offline,
            # and a miss is remembered as if it had been one
            self.c.reachability.mark(flow.request.host, flow.request.port, False)
            if st.role == "lead" and self.c.reachability.mode == "auto":
                self._record_wanted(flow, st)
        msg = flow.error.msg if flow.error else "unknown error"
        if st.committed:
            return  # the whole body arrived and is stored; only the client went away
        if (st.writer is not None and st.writer.failed is None and st.tee is not None and not st.tee.dead
                and not st.timed_out and "client disconnected" in msg.lower()):
            self._continue(flow, st)
            return
        if st.writer is not None:
            st.writer.fail(f"upstream transfer broke: {msg}")
            log.warning("pkgcache: %s: download failed after %d bytes (%s); nothing stored",
                        st.url, st.writer.written, msg)
        self._count(st, "failed")
        self._finish(st, "failed")

    def _continue(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """The leading client left: fetch the rest ourselves so followers (and the cache) still get it."""
        from pkgcache_suite.transfer.continuation import continue_download

        tee = st.tee
        assert tee is not None
        tee.rng = None  # nobody is reading this flow's slice any more
        via = flow.server_conn.via
        proxy = f"http://{via[1][0]}:{via[1][1]}" if via else None
        log.info("pkgcache: client of %s left after %d bytes; finishing the download for the cache and followers",
                 st.url, tee.pos)

        async def run() -> None:
            why = await continue_download(flow.request.url, tee.pos, st.validator, tee, st.expected, proxy,
                                          (self.watchdog.connect_timeout, self.watchdog.idle_timeout))
            if why is None and not st.committed:
                why = st.writer.failed if st.writer and st.writer.failed else "body incomplete"
            if why is not None and not st.committed:
                log.warning("pkgcache: %s: could not finish the download (%s); nothing stored", st.url, why)
                self._count(st, "failed")
                self._finish(st, "failed")

        self._continuations.add(task := asyncio.get_running_loop().create_task(run()))
        task.add_done_callback(self._continuations.discard)

    def _background(self, coro: Any, name: str) -> None:
        """Run coro as a named task that stays referenced until it ends; its failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=f"pkgcache: {name}")
        self._continuations.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._continuations.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("pkgcache: %s failed: %s", name, t.exception())

        task.add_done_callback(done)

    def _finish(self, st: FlowState, state: str) -> None:
        """End this flow's part in a download: tell followers, then let go of the lock."""
        if st.flight is not None:
            if self.c.flights.get(st.key) is st.flight:
                del self.c.flights[st.key]
            st.flight.set_state(state)
            st.flight = None
        if st.writer is not None and state != "done":
            st.writer.abort()
        if st.lock is not None:
            st.lock.release()
            st.lock = None

    def _schedule_stale_check(self, index_key: str) -> None:
        """A refreshed index may list a cached package file with other bytes (re-published under the same
        name): drop such copies before any client is served them.  Package hits of the same repository
        wait while this runs (see request())."""
        from pkgcache_suite.maintenance.tasks import index_root

        root = index_root(index_key)
        if root is None:
            return
        self._stale_pending.append(index_key)
        self._stale_roots.add(root)
        if self._stale_task is not None and not self._stale_task.done():
            return

        async def run() -> None:
            from pkgcache_suite.maintenance.tasks import drop_stale_for_index, record_index_refs

            try:
                while self._stale_pending:
                    key = self._stale_pending.pop(0)
                    store = self.c.store
                    if store is None:
                        return
                    try:
                        await asyncio.to_thread(drop_stale_for_index, store, key)
                    except Exception:
                        log.exception("pkgcache: checking %s for stale copies failed", key)
                    self._background(asyncio.to_thread(record_index_refs, store, key), f"record refs of {key}")
            finally:
                self._stale_roots.clear()
                self._stale_pending.clear()

        self._stale_task = asyncio.get_running_loop().create_task(run())

    async def _report(self, flow: http.HTTPFlow) -> None:
        store = self.c.store
        path = flow.request.path.split("?", 1)[0]
        if path.startswith("/admin/"):
            action = path[len("/admin/"):]
            if action not in report.ACTIONS:
                flow.response = http.Response.make(404, b"no such pkgcache action\n", {"Content-Type": "text/plain"})
                return
            if not report.check_admin(flow, self.c.admin_auth, self.csrf) or store is None:
                return
            form = flow.request.urlencoded_form
            try:
                result = await asyncio.to_thread(self._admin_action, store, action, form.get("key", ""),
                                                 form.get("now") == "1")
            except Exception as e:
                log.exception("pkgcache: admin action %s failed", action)
                result = f"{action} failed: {e}"
            log.info("pkgcache: admin action %s: %s", action, result)
            flow.response = http.Response.make(200, f"{result}\n".encode(), {"Content-Type": "text/plain"})
            return
        maint = await asyncio.to_thread(self._maintenance_info, store) if store is not None else {}
        report.respond(flow, self.c.stats.snapshot(), self._info(), maint, self.csrf)

    def _admin_action(self, store: CacheStore, action: str, key: str, now: bool) -> str:
        from pkgcache_suite.maintenance import tasks as maintenance

        if action == "expire":
            res = maintenance.expire(store, now_=now)
            return f"expire: {len(res.deleted)} deleted ({res.freed} bytes), {len(res.orphaned)} orphans" + (
                f"; refused under {', '.join(res.refused_roots)} (index parsing failed)" if res.refused_roots else "")
        if action == "verify":
            vres = maintenance.verify(store)
            return f"verify: {vres.checked} checked, {len(vres.damaged)} damaged"
        if action == "delete":
            if not key or store.get_entry(key) is None:
                return f"delete: {key!r} is not in the cache"
            store.drop(key)
            return f"deleted {key}"
        self.c.stats = Stats()
        return "counters reset"

    @staticmethod
    def _maintenance_info(store: CacheStore) -> dict[str, Any]:
        from pkgcache_suite.maintenance import tasks as maintenance

        from pkgcache_suite.indexes.model import all_entries

        lengths = [e.length for _, e in all_entries(store)]
        return {"size": {"files": len(lengths), "bytes": sum(lengths)},
                "runs": maintenance.read_json(store.root / ".pkgcache" / "maintenance.json", {}).get("runs", []),
                "orphans": maintenance.load_json_list(store, "orphans.json", "orphans"),
                "damaged": maintenance.load_json_list(store, "damaged.json", "damaged")}

    def _info(self) -> dict[str, Any]:
        store = self.c.store
        wanted = self.c.wanted
        return {
            "cache_dir": str(store.root) if store else None,
            "wanted_urls": len(wanted.entries) if wanted else 0,
            "datastore": str(wanted.datastore.root) if wanted and wanted.datastore else None,
            "upstream": self.c.reachability.snapshot() if self.c.reachability else {},
            "entries": len(store) if store else 0,
            "downloads_in_progress": len(self.c.flights),
        } | {k: v for src in self.c.info_sources for k, v in src().items()}
