"""The report served at the reserved virtual host ``http://pkgcache/`` (as mitmproxy serves mitm.it).

It is answered inside the proxy, so it works for any client that uses pkgcache
as its proxy, without another port to open; a browser that is not set up to
use the proxy gets the same pages at the proxy's own address.  Reading is
open, except who the clients are; every action that changes state is a POST
that needs the admin password (HTTP Basic), a token bound to it and a request
from the report's own pages (proxy/adminauth.py), so another page cannot
trigger it.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from mitmproxy import http

from pkgcache_suite import __version__
from pkgcache_suite.proxy import adminauth
from pkgcache_suite.proxy.flowinfo import client_address

RESERVED_HOST = "pkgcache"
META_DASHBOARD = "pkgcache_dashboard"  # set by the router on a plain browser request to the proxy's own address
ACTIONS = ("expire", "verify", "import", "precache", "delete", "reset-stats")
log = logging.getLogger("pkgcache")
TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(stylesheet=markupsafe.Markup((TEMPLATES / "style.css").read_text()), version=__version__)
    return env


def is_report_target(req: http.Request) -> bool:
    """Decided from the request target alone: a Host header naming the report host changes nothing."""
    return req.host.lower() == RESERVED_HOST


def render(template: str, **context: Any) -> str:
    """A page: the stylesheet is inlined and nothing is loaded from elsewhere, so it works offline."""
    return _environment().get_template(template).render(**context)


def check_admin(flow: http.HTTPFlow, admin_auth: str | None, secret: bytes) -> bool:
    """True when a POST /admin/... may run; otherwise sets the refusal (401/403/405) on the flow and logs it."""
    def refuse(code: int, why: str, headers: dict[str, str] | None = None) -> bool:
        log.warning("pkgcache: refused admin action %s from %s: %s", flow.request.path, client_address(flow), why)
        flow.response = http.Response.make(code, f"pkgcache: {why}\n".encode(),
                                           {"Content-Type": "text/plain", **(headers or {})})
        return False

    if flow.request.method != "POST":
        return refuse(405, "admin actions need POST", {"Allow": "POST"})
    if not admin_auth:
        return refuse(403, "forbidden: no admin password is configured (pkgcache_admin_password or AdminAuth)")
    if (why := adminauth.cross_site(flow)) is not None:
        return refuse(403, f"forbidden: {why}; admin actions are taken on http://pkgcache/admin")
    if not flow.request.headers.get("authorization", "").lower().startswith("basic "):
        return refuse(401, "admin credentials required", {"WWW-Authenticate": 'Basic realm="pkgcache"'})
    if adminauth.presented(flow) is None:
        return refuse(403, "forbidden: malformed credentials")
    if not adminauth.is_admin(flow, admin_auth):
        return refuse(403, "forbidden: wrong user or password")
    given = flow.request.urlencoded_form.get("csrf") or flow.request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(given.encode(), adminauth.token(secret, admin_auth).encode()):
        return refuse(403, "forbidden: missing or wrong CSRF token (use the form on http://pkgcache/admin)")
    return True


def challenge(flow: http.HTTPFlow, admin_auth: str | None) -> bool:
    """True when the request carries the admin's credentials; otherwise a 401 (or 403 without a password)."""
    if adminauth.is_admin(flow, admin_auth):
        return True
    if not admin_auth:
        flow.response = http.Response.make(403, b"pkgcache: no admin password is configured\n",
                                           {"Content-Type": "text/plain"})
    else:
        flow.response = http.Response.make(401, b"pkgcache: admin credentials required\n",
                                           {"Content-Type": "text/plain",
                                            "WWW-Authenticate": 'Basic realm="pkgcache"'})
    return False


def html_page(flow: http.HTTPFlow, body: str, status: int = 200) -> None:
    flow.response = http.Response.make(status, body.encode(), {"Content-Type": "text/html; charset=utf-8",
                                                               "Cache-Control": "no-store"})


def for_anyone(snap: dict[str, Any]) -> dict[str, Any]:
    """The counters without what says who the clients are (their networks): that is for the admin."""
    return {**{k: v for k, v in snap.items() if k != "by_client"},
            "recent": [{**r, "client": ""} for r in snap.get("recent", [])]}


def respond_json(flow: http.HTTPFlow, snap: dict[str, Any], info: dict[str, Any], maint: dict[str, Any]) -> None:
    body = json.dumps({**snap, "cache": info, "maintenance": maint}, indent=2).encode()
    flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
