"""The report host's requests (``http://pkgcache/``): the page, stats.json and the admin actions.

Answered inside the proxy, after access control; rendering lives in report.py.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from mitmproxy import http

from pkgcache_suite.context import CacheContext
from pkgcache_suite.maintenance import tasks as maintenance
from pkgcache_suite.proxy import metrics, report
from pkgcache_suite.storage import CacheStore

log = logging.getLogger("pkgcache")


class Dashboard:
    def __init__(self, shared: CacheContext) -> None:
        self.c = shared
        self.csrf = secrets.token_urlsafe(16)

    async def answer(self, flow: http.HTTPFlow) -> None:
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
        if path in ("/metrics", "/health"):
            self._monitoring(flow, path)
            return
        maint = await asyncio.to_thread(self._maintenance_info, store) if store is not None else {}
        report.respond(flow, self.c.stats.snapshot(), self._info(), maint, self.csrf)

    def _monitoring(self, flow: http.HTTPFlow, path: str) -> None:
        root = self.c.store.root if self.c.store is not None else None
        if path == "/metrics":
            body = metrics.render(self.c.stats.snapshot(), self._info(), root)
            flow.response = http.Response.make(200, body, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
            return
        problems = metrics.health(root)
        text = "ok\n" if not problems else "".join(f"unhealthy: {p}\n" for p in problems)
        flow.response = http.Response.make(503 if problems else 200, text.encode(), {"Content-Type": "text/plain"})

    def _admin_action(self, store: CacheStore, action: str, key: str, now: bool) -> str:
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
        self.c.stats.reset()
        return "counters reset"

    @staticmethod
    def _maintenance_info(store: CacheStore) -> dict[str, Any]:
        lengths = [e.length for _, e in store.entries()]
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
