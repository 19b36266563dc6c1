"""The report host's requests (``http://pkgcache/``, or the proxy's own address): the pages, stats.json,
monitoring and the admin actions.

Answered inside the proxy, after access control; the wording lives in
reportview.py and the layout in templates/.  An admin action posted from the
page comes back to the page with its result (303 to ``/?done=N``); a script
posting with curl gets the result as plain text.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from mitmproxy import http

from pkgcache_suite.background import Tasks
from pkgcache_suite.context import CacheContext
from pkgcache_suite.maintenance import precache
from pkgcache_suite.maintenance import tasks as maintenance
from pkgcache_suite.progress import TransferProgress
from pkgcache_suite.proxy import adminauth, metrics, report, reportview, wantpage
from pkgcache_suite.proxy.flowinfo import META_VIA
from pkgcache_suite.storage import PRIVATE, CacheStore

if TYPE_CHECKING:
    from pkgcache_suite.proxy.offline import OfflineAddon
    from pkgcache_suite.proxy.router import Router
    from pkgcache_suite.proxy.storeaddon import OpenStore
from pkgcache_suite.units import human_size

log = logging.getLogger("pkgcache")

RESULTS_KEPT = 50
NO_SUCH_PAGE = ("no such pkgcache page\n"
                "This port is pkgcache's proxy port and its dashboard (/). A client downloads through it by using "
                "it as its proxy (http_proxy, apt's Acquire::http::Proxy); mirror-style URLs "
                "(http://PROXY-HOST:3142/debian/...) need a second listener: --mode reverse:http://localhost:9@3142 "
                "(see /setup).\n")


@dataclass(frozen=True)
class Result:
    action: str
    text: str
    failed: bool = False


class _LogLines(io.TextIOBase):
    """Progress lines of a precache started from the page go to the proxy's log."""

    def write(self, s: str) -> int:
        for line in s.splitlines():
            if line.strip():
                log.info("pkgcache: %s", line)
        return len(s)


class Dashboard:
    def __init__(self, shared: CacheContext, storage: OpenStore, offline: OfflineAddon, router: Router) -> None:
        self.c, self.storage, self.offline, self.router = shared, storage, offline, router
        self._secret: tuple[Path | None, bytes] | None = None
        self.results: dict[int, Result] = {}
        self._ids = itertools.count(1)
        self.tasks = Tasks()

    async def answer(self, flow: http.HTTPFlow) -> None:
        path = flow.request.path.split("?", 1)[0]
        if path.startswith("/admin/"):
            await self._admin(flow, path[len("/admin/"):])
        elif path in ("/metrics", "/health"):
            self._monitoring(flow, path)
        elif path == "/csrf":
            if report.challenge(flow, self.router.s.admin_auth):
                flow.response = http.Response.make(200, self._token().encode(), {"Content-Type": "text/plain",
                                                                                 "Cache-Control": "no-store"})
        elif path in ("/stats.json", "/stats"):
            maint = await self._maintenance_info()
            snap = self.c.stats.snapshot()
            admin = adminauth.is_admin(flow, self.router.s.admin_auth)
            report.respond_json(flow, snap if admin else report.for_anyone(snap), self._info(), maint)
        elif path in ("/", "/index.html"):
            await self._overview(flow, admin=False)
        elif path == "/admin":
            if report.challenge(flow, self.router.s.admin_auth):
                await self._overview(flow, admin=True)
        elif path == "/want":
            await wantpage.answer(flow, self.offline.wanted_list(), _proxy_address(flow), healthy=not self._problems())
        elif path == "/setup":
            report.html_page(flow, report.render("setup.html", healthy=not self._problems(),
                                                 **reportview.setup(_proxy_address(flow))))
        else:
            flow.response = http.Response.make(404, NO_SUCH_PAGE.encode(), {"Content-Type": "text/plain"})

    async def _overview(self, flow: http.HTTPFlow, admin: bool) -> None:
        """The dashboard; the admin's view (/admin, signed in) adds who the clients are and the actions."""
        maint = await self._maintenance_info()
        snap = await asyncio.to_thread(self.c.stats.snapshot)
        root, s = self.storage.store.root, self.storage.settings
        view = reportview.dashboard(snap if admin else report.for_anyone(snap), self._info(), maint,
                                    metrics.disk(root), s.max_size, clients=admin)
        done = flow.request.query.get("done", "")
        result = self.results.get(int(done)) if done.isdigit() and admin else None
        problems = self._problems()
        report.html_page(flow, report.render("dashboard.html", result=result, problems=problems,
                                             healthy=not problems, csrf=self._token() if admin else "",
                                             signed_in=admin, admin=bool(self.router.s.admin_auth), **view))

    def _admin_secret(self) -> bytes:
        """The secret of this cache's admin tokens, shared by every process serving it (read once per root)."""
        root = self.storage.store.root / PRIVATE
        if self._secret is None or self._secret[0] != root:
            try:
                self._secret = (root, adminauth.shared_secret(root))
            except OSError as e:
                log.warning("pkgcache: no shared admin secret (%s): form tokens are this process's own", e)
                self._secret = (root, adminauth.shared_secret(None))
        return self._secret[1]

    def _token(self) -> str:
        """The admin's form token: bound to the admin's credentials, the same in every process of this cache."""
        return adminauth.token(self._admin_secret(), self.router.s.admin_auth or "")

    def _problems(self) -> list[str]:
        return metrics.health(self.storage.store.root)

    # -- admin actions ------------------------------------------------------------------

    async def _admin(self, flow: http.HTTPFlow, action: str) -> None:
        store = self.storage.store
        if action not in report.ACTIONS:
            flow.response = http.Response.make(404, b"no such pkgcache action\n", {"Content-Type": "text/plain"})
            return
        if not report.check_admin(flow, self.router.s.admin_auth, self._admin_secret()):
            return
        form = dict(flow.request.urlencoded_form.items())
        try:
            if action == "precache":
                result = await self._precache(store, form, _proxy_address(flow))
            else:
                result = Result(action, await asyncio.to_thread(self._run, store, action, form))
        except Exception as e:
            log.exception("pkgcache: admin action %s failed", action)
            result = Result(action, f"{action} failed: {e}", failed=True)
        log.info("pkgcache: admin action %s: %s", action, result.text)
        if "text/html" in flow.request.headers.get("accept", ""):
            n = next(self._ids)
            self.results[n] = result
            for old in sorted(self.results)[:-RESULTS_KEPT]:
                del self.results[old]
            flow.response = http.Response.make(303, b"", {"Location": f"/admin?done={n}", "Cache-Control": "no-store"})
            return
        flow.response = http.Response.make(200, f"{result.text}\n".encode(), {"Content-Type": "text/plain"})

    def _run(self, store: CacheStore, action: str, form: dict[str, str]) -> str:
        if action == "expire":
            res = maintenance.expire(store, now_=form.get("now") == "1")
            return (f"expire: {len(res.deleted)} deleted ({human_size(res.freed)}), {len(res.orphaned)} orphans"
                    + (f"; refused under {', '.join(res.refused_roots)} (index parsing failed)"
                       if res.refused_roots else ""))
        if action == "verify":
            vres = maintenance.verify(store)
            return f"verify: {vres.checked} checked, {len(vres.damaged)} damaged"
        if action == "import":
            folder = Path(form.get("dir", "")).expanduser()
            if not form.get("dir") or not folder.is_dir():
                return f"import: {form.get('dir', '')!r} is not a folder on the proxy's machine"
            ires = maintenance.import_dir(store, folder)
            return (f"import: {len(ires.placed)} placed, {len(ires.already)} already cached, "
                    f"{len(ires.unmatched)} unmatched, {len(ires.failed)} failed")
        if action == "delete":
            key = form.get("key", "")
            if not key or store.get_entry(key) is None:
                return f"delete: {key!r} is not in the cache"
            store.drop(key)
            return f"deleted {key}"
        self.c.stats.reset()
        return "counters reset"

    async def _precache(self, store: CacheStore, form: dict[str, str], proxy: str) -> Result:
        """Planned now, downloaded in the background through this proxy, like `pkgcache precache`."""
        def values(name: str) -> tuple[str, ...]:
            return tuple(v.strip() for v in form.get(name, "").split(",") if v.strip())

        selection = precache.Selection(suites=values("suite"), components=values("component"), archs=values("arch"))
        if not selection:
            return Result("precache", "precache: name at least a suite", failed=True)
        p = await asyncio.to_thread(precache.plan, store, selection)
        what = precache.describe(selection)
        if not p.indexes:
            return Result("precache", f"precache: no cached index matches {what}", failed=True)
        if p.urls:
            self.tasks.start(self._download(store, p, proxy, what), f"precache {what}")
        return Result("precache", f"precache of {what}: {len(p.urls)} files ({human_size(p.bytes)}) being "
                      f"downloaded, {p.cached} already cached; see downloads in progress and the log")

    @staticmethod
    async def _download(store: CacheStore, p: precache.Plan, proxy: str, what: str) -> None:
        with TransferProgress("precache", tty=False, out=cast(IO[str], _LogLines())) as progress:
            failed = await precache.download(p, proxy, 4, progress)
        log.info("pkgcache: precache of %s: %s", what, progress.summary())
        await asyncio.to_thread(maintenance.record_run, store, "precache",
                                {"selection": what, "fetched": len(p.urls) - len(failed), "failed": len(failed)})

    # -- monitoring ---------------------------------------------------------------------

    def _monitoring(self, flow: http.HTTPFlow, path: str) -> None:
        root = self.storage.store.root
        if path == "/metrics":
            body = metrics.render(self.c.stats.snapshot(), self._info(), root)
            flow.response = http.Response.make(200, body, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
            return
        problems = metrics.health(root)
        text = "ok\n" if not problems else "".join(f"unhealthy: {p}\n" for p in problems)
        flow.response = http.Response.make(503 if problems else 200, text.encode(), {"Content-Type": "text/plain"})

    async def _maintenance_info(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._read_maintenance, self.storage.store)

    @staticmethod
    def _read_maintenance(store: CacheStore) -> dict[str, Any]:
        size = store.totals()
        return {"size": {"files": size.files, "bytes": size.bytes, "counted": size.complete},
                "runs": maintenance.read_json(store.root / ".pkgcache" / "maintenance.json", {}).get("runs", []),
                "orphans": maintenance.load_json_list(store, "orphans.json", "orphans"),
                "damaged": maintenance.load_json_list(store, "damaged.json", "damaged"),
                "withdrawn": {k: v for k, v in store.withdrawn.all().items() if store.get_entry(k) is not None},
                "bad_signatures": store.alerts.all()}

    def _info(self) -> dict[str, Any]:
        store, wanted, reach = self.storage.store, self.offline.wanted_list(), self.offline.reach
        return {
            "cache_dir": str(store.root),
            "wanted_urls": len(wanted.entries),
            "wanted_requests": len(wanted.requests),
            "datastore_safe_to_remove": wanted.safe_to_remove,
            "datastore": str(wanted.datastore.root) if wanted.datastore else None,
            "upstream": reach.snapshot(),
            "offline_mode": reach.mode,
            "entries": len(store),
            "cache_bytes": store.totals().bytes,
            "downloads_in_progress": len(self.c.flights),
        } | self.router.info()


def _proxy_address(flow: http.HTTPFlow) -> str:
    """This proxy as the client reached it: the local address of the client's own connection (or of its
    connection to the tier's front)."""
    via = flow.metadata.get(META_VIA)
    if via:
        return f"http://{via}"
    sock = flow.client_conn.sockname
    if not sock:
        return "http://PROXY-HOST:8080"
    host = str(sock[0])
    if host.startswith("::ffff:"):
        host = host[7:]
    return f"http://[{host}]:{sock[1]}" if ":" in host else f"http://{host}:{sock[1]}"

