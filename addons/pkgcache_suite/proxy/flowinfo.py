"""Small facts about a flow that several addons log or record."""

from __future__ import annotations

from mitmproxy import http


def client_address(flow: http.HTTPFlow, unknown: str = "?") -> str:
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else unknown
