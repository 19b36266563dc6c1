"""The report served at the reserved virtual host ``http://pkgcache/`` (as mitmproxy serves mitm.it).

It is answered inside the proxy, so it works for any client that uses pkgcache
as its proxy, without another port to open.  Reading is open; every action that
changes state is a POST that needs the admin password (HTTP Basic) and the
page's CSRF token, so a link on some other page cannot trigger it.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import logging
import time
from typing import Any

from mitmproxy import http

from pkgcache_suite.proxy.flowinfo import client_address

RESERVED_HOST = "pkgcache"


def is_report_target(req: http.Request) -> bool:
    """Decided from the request target alone: a Host header naming the report host changes nothing."""
    return req.host.lower() == RESERVED_HOST
ACTIONS = ("expire", "verify", "delete", "reset-stats")
log = logging.getLogger("pkgcache")

_COLS = ("hit", "miss", "revalidated", "stale", "coalesced", "pass", "failed", "offline_miss", "known_404")


def _row(name: str, c: dict[str, int]) -> str:
    cells = "".join(f"<td>{c.get(k, 0)}</td>" for k in _COLS)
    return (f"<tr><th>{html.escape(name)}</th>{cells}"
            f"<td>{c['bytes_from_cache'] / 1e6:.1f}</td><td>{c['bytes_from_upstream'] / 1e6:.1f}</td></tr>")


def _table(rows: dict[str, dict[str, int]]) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{k}</th>" for k in _COLS) + "<th>MB from cache</th><th>MB upstream</th></tr>"
    return f"<table>{head}{''.join(_row(k, v) for k, v in sorted(rows.items()))}</table>"


def _form(action: str, label: str, csrf: str, extra: str = "") -> str:
    return (f'<form method="post" action="/admin/{action}" style="display:inline">'
            f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">{extra}'
            f'<button type="submit">{html.escape(label)}</button></form>')


def _delete_form(key: str, csrf: str) -> str:
    return _form("delete", "delete", csrf, f'<input type="hidden" name="key" value="{html.escape(key)}">')


def render_html(snap: dict[str, Any], info: dict[str, Any], maint: dict[str, Any], csrf: str) -> str:
    facts = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
    runs = "".join(
        f"<tr><td>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.get('when', 0)))}</td>"
        f"<td>{html.escape(r.get('command', ''))}</td>"
        f"<td><code>{html.escape(json.dumps({k: v for k, v in r.items() if k not in ('command', 'when')}))}</code></td></tr>"
        for r in reversed(maint.get("runs", [])[-10:]))
    orphans = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{time.strftime('%Y-%m-%d', time.localtime(since))}</td>"
        f"<td>{_delete_form(k, csrf)}</td></tr>"
        for k, since in sorted(maint.get("orphans", {}).items())[:200])
    damaged = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(why)}</td>"
        f"<td>{_delete_form(k, csrf)}</td></tr>"
        for k, why in sorted(maint.get("damaged", {}).items())[:200])
    size = maint.get("size", {})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pkgcache report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}th{{text-align:left}}code{{font-size:85%}}</style>
</head><body><h1>pkgcache</h1>
<table>{facts}<tr><th>cached files</th><td>{size.get('files', 0)}</td></tr>
<tr><th>cache size</th><td>{size.get('bytes', 0) / 1e6:.1f} MB</td></tr></table>
<h2>Maintenance</h2>
<p>{_form('expire', 'Expire (grace period)', csrf)}
{_form('expire', 'Expire now', csrf, '<input type="hidden" name="now" value="1">')}
{_form('verify', 'Verify', csrf)}
{_form('reset-stats', 'Reset counters', csrf)} (these ask for the admin password)</p>
<table><tr><th>when</th><th>command</th><th>result</th></tr>{runs}</table>
<h2>Orphans (deleted by expire after the grace period)</h2>
<table><tr><th>file</th><th>orphan since</th><th></th></tr>{orphans}</table>
<h2>Damaged files (from the last verify)</h2>
<table><tr><th>file</th><th>problem</th><th></th></tr>{damaged}</table>
<h2>Total</h2>{_table({"all": snap["total"]})}
<h2>By repository</h2>{_table(snap.get("by_repo", {}))}
<h2>By class</h2>{_table(snap["by_kind"])}
<h2>By host</h2>{_table(snap["by_host"])}
<p><a href="/stats.json">stats.json</a></p>
</body></html>"""


def check_admin(flow: http.HTTPFlow, admin_auth: str | None, csrf: str) -> bool:
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
    given = flow.request.headers.get("authorization", "")
    if not given.lower().startswith("basic "):
        return refuse(401, "admin credentials required", {"WWW-Authenticate": 'Basic realm="pkgcache"'})
    try:
        decoded = base64.b64decode(given[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return refuse(403, "forbidden: malformed credentials")
    if not hmac.compare_digest(decoded.encode(), admin_auth.encode()):
        return refuse(403, "forbidden: wrong user or password")
    token = flow.request.urlencoded_form.get("csrf") or flow.request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(token.encode(), csrf.encode()):
        return refuse(403, "forbidden: missing or wrong CSRF token (use the form on http://pkgcache/)")
    return True


def respond(flow: http.HTTPFlow, snap: dict[str, Any], info: dict[str, Any], maint: dict[str, Any],
            csrf: str) -> None:
    path = flow.request.path.split("?", 1)[0]
    if path in ("/stats.json", "/stats"):
        body = json.dumps({**snap, "cache": info, "maintenance": maint}, indent=2).encode()
        flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
    elif path in ("/", "/index.html"):
        flow.response = http.Response.make(200, render_html(snap, info, maint, csrf).encode(),
                                           {"Content-Type": "text/html; charset=utf-8"})
    elif path == "/csrf":
        flow.response = http.Response.make(200, csrf.encode(), {"Content-Type": "text/plain"})
    else:
        flow.response = http.Response.make(404, b"no such pkgcache page\n", {"Content-Type": "text/plain"})
