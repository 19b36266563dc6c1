"""The report served at the reserved virtual host ``http://pkgcache/`` (as mitmproxy serves mitm.it).

It is answered inside the proxy, so it works for any client that uses pkgcache
as its proxy, without another port to open.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import http

RESERVED_HOST = "pkgcache"
log = logging.getLogger("pkgcache")


def _row(name: str, c: dict[str, int]) -> str:
    cells = "".join(
        f"<td>{c[k]}</td>"
        for k in ("hit", "miss", "revalidated", "stale", "coalesced", "pass", "failed")
    )
    mb = lambda n: f"{n / 1e6:.1f}"  # noqa: E731
    return (
        f"<tr><th>{html.escape(name)}</th>{cells}"
        f"<td>{mb(c['bytes_from_cache'])}</td><td>{mb(c['bytes_from_upstream'])}</td></tr>"
    )


def render_html(snap: dict[str, Any], info: dict[str, Any]) -> str:
    head = (
        "<tr><th></th><th>hits</th><th>misses</th><th>revalidated</th><th>stale</th>"
        "<th>coalesced</th><th>passed</th><th>failed</th><th>MB from cache</th><th>MB upstream</th></tr>"
    )
    rows_kind = "".join(_row(k, v) for k, v in sorted(snap["by_kind"].items()))
    rows_host = "".join(_row(k, v) for k, v in sorted(snap["by_host"].items()))
    facts = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pkgcache report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}th{{text-align:left}}</style></head>
<body><h1>pkgcache</h1>
<table>{facts}</table>
<h2>Total</h2><table>{head}{_row("all", snap["total"])}</table>
<h2>By class</h2><table>{head}{rows_kind}</table>
<h2>By host</h2><table>{head}{rows_host}</table>
<p><a href="/stats.json">stats.json</a></p>
</body></html>"""


def _authorised(flow: http.HTTPFlow, admin_auth: str | None) -> str | None:
    """None when allowed; otherwise why not.  Without credentials the browser is asked for them (401)."""
    if not admin_auth:
        return "no admin password is configured (pkgcache_admin_password or AdminAuth)"
    given = flow.request.headers.get("authorization", "")
    if not given.lower().startswith("basic "):
        return "credentials required"
    try:
        decoded = base64.b64decode(given[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return "malformed credentials"
    return None if hmac.compare_digest(decoded, admin_auth) else "wrong user or password"


def respond(flow: http.HTTPFlow, snap: dict[str, Any], info: dict[str, Any], admin_auth: str | None = None,
            actions: dict[str, Callable[[], str]] | None = None) -> None:
    path = flow.request.path.split("?", 1)[0]
    if path.startswith("/admin/"):
        action = (actions or {}).get(path[len("/admin/"):])
        if action is None:
            flow.response = http.Response.make(404, b"no such pkgcache action\n", {"Content-Type": "text/plain"})
            return
        if flow.request.method != "POST":
            flow.response = http.Response.make(405, b"use POST\n", {"Allow": "POST", "Content-Type": "text/plain"})
            return
        why = _authorised(flow, admin_auth)
        if why is not None:
            client = flow.client_conn.peername[0] if flow.client_conn.peername else "?"
            log.warning("pkgcache: refused admin action %s from %s: %s", path, client, why)
            if why == "credentials required":
                flow.response = http.Response.make(401, b"pkgcache: admin credentials required\n",
                                                   {"WWW-Authenticate": 'Basic realm="pkgcache"',
                                                    "Content-Type": "text/plain"})
            else:
                flow.response = http.Response.make(403, f"pkgcache: forbidden: {why}\n".encode(),
                                                   {"Content-Type": "text/plain"})
            return
        result = action()
        log.info("pkgcache: admin action %s: %s", path, result)
        flow.response = http.Response.make(200, f"{result}\n".encode(), {"Content-Type": "text/plain"})
        return
    if path in ("/stats.json", "/stats"):
        body = json.dumps({**snap, "cache": info}, indent=2).encode()
        flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
    elif path in ("/", "/index.html"):
        flow.response = http.Response.make(
            200, render_html(snap, info).encode(), {"Content-Type": "text/html; charset=utf-8"}
        )
    else:
        flow.response = http.Response.make(404, b"no such pkgcache page\n", {"Content-Type": "text/plain"})
