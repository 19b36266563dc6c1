"""The cache addon: hooks only.  Each request's facts go to policy.decide; transfer carries the decision out.

Hook budget: one dict lookup and one regex scan for requests we do not cache,
because mitmproxy already spends much of its time dispatching hooks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, assert_never

from mitmproxy import ctx, http

from pkgcache_suite.context import CacheContext
from pkgcache_suite.indexes.kinds import BY_HASH
from pkgcache_suite.maintenance.housekeeping import Housekeeping
from pkgcache_suite.transfer.stalecopies import StaleCopies
from pkgcache_suite.offline.reachability import Reachability, via_route
from pkgcache_suite.policy.cachekey import UnsafeURL, cache_key
from pkgcache_suite.policy.decide import Decision, RequestFacts, cacheable, decide
from pkgcache_suite.policy import oci
from pkgcache_suite.transfer.refresh import Refresher
from pkgcache_suite.proxy.registry import other_manifest_variant, registry_offline
from pkgcache_suite.transfer.phase import Phase
from pkgcache_suite.policy.rules import Kind
from pkgcache_suite.policy.variants import variant
from pkgcache_suite.proxy import report
from pkgcache_suite.proxy.dashboard import Dashboard
from pkgcache_suite.proxy.offline import OfflineAddon
from pkgcache_suite.proxy.ready import say_where
from pkgcache_suite.proxy.storeaddon import OpenStore
from pkgcache_suite.proxy.flowinfo import META_FRONT_PATH, client_address, client_network
from pkgcache_suite.proxy.router import META_KEY_HOST, META_NOCACHE, META_REPO, META_REPO_PATH, Router
from pkgcache_suite.storage import CacheStore, Entry, StoreError
from pkgcache_suite.transfer.answers import Answers, count
from pkgcache_suite.transfer.download import Downloads
from pkgcache_suite.transfer.flight import FlightState
from pkgcache_suite.transfer.frontfetch import FrontFetches
from pkgcache_suite.transfer.aftercommit import AfterCommit
from pkgcache_suite.transfer.suiteswitch import SuiteSwitch
from pkgcache_suite.transfer.state import MARKERS, FlowState, Role, WantedNote

log = logging.getLogger("pkgcache")

DURABLE_WAIT = 10.0  # longest an offline miss waits for the wanted list to reach the datastore
META_RELEASE = "pkgcache_release"  # the Release key a flow answers (transfer/suiteswitch.py)


def _url(req: http.Request, host: str) -> str:
    """The request's URL with the host its cache key names (never the client's Host header)."""
    if host == req.host:
        return req.url
    default = 443 if req.scheme == "https" else 80
    return f"{req.scheme}://{host}{'' if req.port == default else f':{req.port}'}{req.path}"


def flow_key(flow: http.HTTPFlow, host: str) -> str:
    """A flow's cache key: its repository's namespace when the router matched one, else host/path."""
    req = flow.request
    repo = flow.metadata.get(META_REPO)
    if repo is None:
        return cache_key(req.scheme, host, req.port, req.path)
    query = "?" + req.path.split("?", 1)[1] if "?" in req.path else ""
    return cache_key(req.scheme, host, req.port, flow.metadata[META_REPO_PATH] + query, repo=repo)


class CacheCore:
    """The request, response and error hooks of the cache.  Its collaborators are handed in when the suite is
    assembled (proxy/suite.py): the store addon's store, classifier and settings, the offline addon's wanted
    list, the Reachability the router shares, the router's view of repositories and admin access."""

    def __init__(self, shared: CacheContext, storage: OpenStore, reach: Reachability, offline: OfflineAddon,
                 router: Router) -> None:
        self.c, self.storage, self.reach, self.offline = shared, storage, reach, offline
        self.flows: dict[str, FlowState] = {}
        self.answers = Answers(shared, self.flows, storage)
        self.stale = StaleCopies(lambda: storage.store, self._republished)
        self.refresher = Refresher()
        self.housekeeping = Housekeeping(shared, storage)
        self.suites = SuiteSwitch(storage)
        after = AfterCommit(self.stale, self.housekeeping, self.suites)
        self.downloads = Downloads(shared, self.flows, self.answers, storage, reach, after)
        self.front = FrontFetches(shared, self.downloads, storage, reach, after, offline)
        self.dashboard = Dashboard(shared, storage, offline, router)

    @property
    def watchdog(self) -> Any:
        return self.downloads.watchdog

    # -- mitmproxy lifecycle -------------------------------------------------------

    def configure(self, updated: set[str]) -> None:
        self.c.inspecting = hasattr(ctx.options, "web_columns")  # under mitmweb

    async def running(self) -> None:
        self.c.started = True
        if self.c.fileserver.server is None:
            await self.c.fileserver.start()
        self.housekeeping.start()
        say_where(self.reach.mode)

    async def done(self) -> None:
        self.housekeeping.stop()
        self.dashboard.tasks.cancel_all()
        self.downloads.stop()
        self.front.stop()
        await self.c.fileserver.stop()
        for st in list(self.flows.values()):
            self.downloads.finish(st, FlightState.FAILED)
        try:
            self.housekeeping.flush()
        except Exception:
            log.exception("pkgcache: writing the counters at exit failed")
        self.housekeeping.closed()  # the store addon closes the store after this

    # -- request ----------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        """Guarded: whatever goes wrong, the flow is left on the safe path (proxied, streamed, not stored)."""
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        try:
            await self._request(flow)
        except Exception:
            log.exception("pkgcache: %s: internal error; proxying without caching", flow.request.url)
            self._abandon(flow)

    def _abandon(self, flow: http.HTTPFlow) -> None:
        st = self.flows.pop(flow.id, None)
        if st is not None:
            self.downloads.finish(st, FlightState.FAILED)
        self.watchdog.unwatch(flow.id)

    async def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if report.is_report_target(req) or flow.metadata.get(report.META_DASHBOARD):
            try:
                await self.dashboard.answer(flow)
            except Exception:  # the report is never forwarded anywhere, whatever fails
                log.exception("pkgcache: report page %s failed", req.path)
                flow.response = http.Response.make(500, b"pkgcache: the report page failed; see the log\n",
                                                   {"Content-Type": "text/plain"})
            return
        if not self.storage.is_open:
            return  # not configured yet (never once mitmproxy runs): proxied as it is
        if req.path in oci.API_ROOT and req.method in ("GET", "HEAD") and (
                self.reach.mode == "on" or await self._offline(flow, fallback=True)):
            registry_offline(flow)
            return
        store, classifier = self.storage.store, self.storage.classifier
        host = flow.metadata.get(META_KEY_HOST) or req.host
        url = _url(req, host)
        kind, ecosystem = classifier.explain(url, req.path, req.headers.get("accept", ""))
        facts = RequestFacts(req.method, kind, no_store=bool(flow.metadata.get(META_NOCACHE)),
                             never_upstream=self.reach.mode == "on")
        st, unsafe = None, ""
        if cacheable(facts.method, kind, facts.no_store):  # a cache key and a lookup only for what may be cached
            try:
                key = flow_key(flow, host)
                accept = req.headers.get("accept")
                if kind is Kind.VOLATILE and (v := oci.manifest_variant(req.path, accept) or variant(accept)):
                    key = f"{key}~{v}"  # another representation of the same URL, stored beside it
                st = FlowState(key=key, url=url, kind=kind, host=host, network=client_network(flow), accept=accept or "",
                               ecosystem=ecosystem,
                               front_path=flow.metadata.get(META_FRONT_PATH), remapped=META_REPO in flow.metadata)
            except (UnsafeURL, UnicodeDecodeError) as e:
                unsafe = str(e)
                facts = replace(facts, unsafe=True)
        if st is None:
            self._settle(flow, decide(facts), host, url, unsafe)
            return
        if "/dists/" in url or url.endswith("/repomd.xml"):
            self.offline.wanted_list().note_index(url, client_address(flow))  # fetch brings only the indexes clients use
            if self.suites.is_release(st.key):
                flow.metadata[META_RELEASE] = st.key  # once answered, the client's view of the suite
        try:
            await self._carry_out(flow, st, store, facts)
        except StoreError as e:
            log.error("pkgcache: cache unusable for %s (%s); proxying without caching", url, e)
            self.downloads.finish(st, FlightState.FAILED)

    def _settle(self, flow: http.HTTPFlow, decision: Decision, host: str, url: str, unsafe: str) -> None:
        """A request the cache files nothing for: passed on, or refused locally."""
        if decision is Decision.REFUSE and unsafe:
            log.warning("pkgcache: refused %s: %s", url, unsafe)
            flow.response = http.Response.make(400, f"pkgcache: refusing unsafe URL: {unsafe}\n".encode(),
                                               {"Content-Type": "text/plain"})
        elif decision is Decision.REFUSE:
            self._offline_refusal(flow, host)  # "on" means upstream is never contacted, whatever the URL

    async def _lookup(self, store: CacheStore, st: FlowState) -> Entry | None:
        entry = store.lookup(st.key)
        if entry is None and "~oci-" in st.key:
            entry = other_manifest_variant(store, st)
        if entry is not None and st.kind is Kind.IMMUTABLE and await self.stale.wait_for_check(store, st.key):
            entry = store.lookup(st.key)  # a refreshed index was being checked: this may be a re-published file
        if entry is None and (m := BY_HASH.search(st.key)):
            # an index apt fetched by its plain name (a mirror without that by-hash object, a datastore that
            # brought the plain one): the same bytes, by digest, online or offline
            entry = store.same_bytes_beside(st.key, m.group(1))
        return entry

    async def _carry_out(self, flow: http.HTTPFlow, st: FlowState, store: CacheStore, facts: RequestFacts) -> None:
        """Drive the request's states (policy/decide.py) until a final one, and carry that out."""
        # the bytes the Release the client was given names, the signature its index was checked with: as they are
        want = None if self.refresher.is_refresh(flow) else self.suites.named(client_address(flow, ""), st.key)
        if named := self.suites.copy_with(st.key, want) or self.downloads.signed.paired(st.key):
            self._serve(flow, st, named, Decision.HIT)
            return
        entry = await self._lookup(store, st)
        missing = store.missing_since(st.key) if entry is None else None
        fresh = self.storage.settings.index_fresh
        facts = replace(facts, cached=entry is not None,
                        missing_age=None if missing is None else time.time() - missing,
                        negative_ttl=self.storage.settings.negative_ttl,
                        young=bool(entry is not None and fresh and time.time() - entry.validated < fresh
                                   and not self.refresher.is_refresh(flow) and want is None))  # not the client's
        lock = None
        while True:
            decision = decide(facts)
            match decision:
                case Decision.NEED_REACHABILITY:
                    facts = replace(facts, offline=await self._offline(flow, fallback=entry is not None))
                case Decision.NEED_LOCK:
                    lock = store.try_lock(st.key)
                    facts = replace(facts, locked=lock is not None)
                case Decision.HIT | Decision.STALE:
                    assert entry is not None  # decide() serves only what was found
                    self._serve(flow, st, entry, decision)
                    return
                case Decision.SERVE_THEN_REFRESH:
                    assert entry is not None
                    self.refresher.start(flow, st.key)  # a copy of the request, before it is answered
                    self._serve(flow, st, entry, Decision.HIT)
                    return
                case Decision.REVALIDATE:
                    assert entry is not None and lock is not None
                    self.suites.keep(entry)  # older views of its suite still get these bytes
                    self.downloads.revalidate(flow, st, entry, lock)
                    return
                case Decision.OFFLINE_MISS:
                    await self._offline_miss(flow, st)
                    return
                case Decision.KNOWN_MISSING:
                    self._known_missing(flow, st, facts.missing_age or 0.0)
                    return
                case Decision.LEAD:
                    if await self.answers.lead_or_follow(flow, st) \
                            and not await self.front.lead(flow, st, self._wanted_note(flow, st)):
                        self.downloads.lead(flow, st)
                    return
                case Decision.PASS | Decision.REFUSE:
                    return  # a HEAD miss online: proxied as it is (REFUSE never follows a lookup)
                case _:
                    assert_never(decision)

    async def _offline(self, flow: http.HTTPFlow, fallback: bool) -> bool:
        """Real traffic decides; a route nothing is known about is probed once (offline/reachability.py): a
        refused connection would be mitmproxy's 502, where a stale copy, or an offline miss recorded as
        wanted, is the better answer."""
        return await self.reach.offline(flow.request.host, flow.request.port, via=via_route(flow.server_conn.via),
                                        fallback=fallback)

    def _serve(self, flow: http.HTTPFlow, st: FlowState, entry: Entry, decision: Decision) -> None:
        stale = decision is Decision.STALE
        self.answers.serve_entry(flow, st, entry, "STALE" if stale else "HIT")
        if stale and flow.response is not None:
            flow.response.headers["Warning"] = '111 pkgcache "Revalidation Failed"'

    async def _offline_miss(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """Answer 404 (package managers skip those) and remember the URL for `pkgcache fetch`."""
        wanted = self.offline.wanted_list()
        self._record_wanted(flow, st)
        where = str(wanted.datastore.wanted_path if wanted.datastore else wanted.local_path)
        try:  # the answer waits until the list holds this URL on disk: a stick pulled out next is complete
            await asyncio.wait_for(wanted.durable(), DURABLE_WAIT)
        except (asyncio.TimeoutError, TimeoutError):
            log.warning("pkgcache: writing the wanted list to %s takes long; answering %s anyway", where, st.url)
        body = (f"pkgcache: offline, and {st.url} is not cached.\n"
                f"It was recorded in {where} for fetching with `pkgcache fetch`.\n")
        flow.response = http.Response.make(404, body.encode(), {"Content-Type": "text/plain", "X-Cache": "MISS"})
        flow.comment = f"pkgcache: offline miss, recorded ({st.kind.value})"
        flow.marked = MARKERS["OFFLINE"]
        count(self.c, st, "offline_miss")

    def _known_missing(self, flow: http.HTTPFlow, st: FlowState, age: float) -> None:
        body = f"pkgcache: upstream answered 404 for {st.url} {age:.0f} s ago.\n"
        flow.response = http.Response.make(404, body.encode(), {"Content-Type": "text/plain", "X-Cache": "HIT"})
        flow.comment = f"pkgcache: known 404, not asked again ({st.kind.value})"
        count(self.c, st, "known_404")

    def _republished(self, index_key: str, keys: list[str]) -> None:
        """Copies a refreshed index lists with other bytes were dropped: counted, and shown as recent activity."""
        for key in keys:
            self.c.stats.count("republished", Kind.IMMUTABLE.value, key.split("/", 1)[0], repo=key.split("/", 1)[0],
                               url=key, ecosystem=self.storage.classifier.explain("", "/" + key.split("/", 1)[-1])[1])

    def _offline_refusal(self, flow: http.HTTPFlow, host: str) -> None:
        """pkgcache_offline=on and a request pkgcache does not cache: say so, never go upstream."""
        body = (f"pkgcache: offline (pkgcache_offline=on), and {flow.request.method} {flow.request.pretty_url} "
                f"is not something pkgcache caches, so it cannot be answered.\n")
        flow.response = http.Response.make(504, body.encode(), {"Content-Type": "text/plain", "X-Cache": "MISS"})
        flow.comment = "pkgcache: offline, not cacheable: not sent upstream"
        self.c.stats.count("offline_miss", Kind.PASS.value, host, client=client_network(flow),
                           url=flow.request.pretty_url)

    @staticmethod
    def _wanted_note(flow: http.HTTPFlow, st: FlowState) -> WantedNote:
        headers = {k.lower(): v for k, v in flow.request.headers.items()}
        return WantedNote(st.url, client_address(flow, ""), headers, st.kind.value)

    def _record_wanted(self, flow: http.HTTPFlow, st: FlowState) -> None:
        n = self._wanted_note(flow, st)
        self.offline.wanted_list().record(n.url, n.client, n.headers, n.kind)

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
            self._abandon(flow)
            resp.stream = True

    def _responseheaders(self, flow: http.HTTPFlow, resp: http.Response) -> None:
        st = self.flows.get(flow.id)
        if st is None:
            resp.stream = True  # pass-through: never buffer a body we do not keep
            if "X-Cache" not in resp.headers:  # every answer says what the cache did; ours already do
                resp.headers["X-Cache"] = "MISS"
            if not flow.comment:
                flow.comment = "pkgcache: passed through (not cached)"
            return
        if st.role is Role.ROUTED:
            resp.stream = True
            if st.original_url:
                flow.request.url = st.original_url  # show the real URL in mitmweb and logs
            return
        self.downloads.on_headers(flow, st, resp)

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._response(flow)
        if (key := flow.metadata.get(META_RELEASE)) and flow.response and flow.response.status_code in (200, 304):
            try:
                self.suites.given(client_address(flow, ""), key)
            except Exception:  # guarded: the client has its answer; without a view its indexes go as usual
                log.exception("pkgcache: %s: recording the client's view of the suite failed", flow.request.url)

    async def _response(self, flow: http.HTTPFlow) -> None:
        self.watchdog.unwatch(flow.id)
        self.refresher.finished(flow)
        st = self.flows.pop(flow.id, None)
        if st is None or st.role is Role.ROUTED or flow.response is None:
            return
        if st.phase is Phase.HOLDING:
            try:
                await self.downloads.signed.settle(flow, st)  # a signed index: checked before anyone has it
            except Exception:
                log.exception("pkgcache: %s: checking its signature failed; not stored", flow.request.url)
                self.downloads.finish(st, FlightState.FAILED)
            return
        self.downloads.on_response(flow, st, flow.response)
        if st.committed and st.entry is not None and self.front.run_dir is not None:
            # a worker's own download tells the origin's speed too: one that became fast goes to nginx again
            took = (flow.response.timestamp_end or time.time()) - flow.request.timestamp_start
            self.front.measured(flow.request.host, flow.request.port, st.entry.length, took)

    def error(self, flow: http.HTTPFlow) -> None:
        self.watchdog.unwatch(flow.id)
        self.refresher.finished(flow)
        st = self.flows.pop(flow.id, None)
        if st is None or st.role is Role.ROUTED:
            return
        if self.downloads.on_error(flow, st):
            self._record_wanted(flow, st)
