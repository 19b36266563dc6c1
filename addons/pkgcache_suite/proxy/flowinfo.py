"""Small facts about a flow that several addons log or record."""

from __future__ import annotations

from mitmproxy import http

from pkgcache_suite.policy.access import network_of


META_CLIENT = "pkgcache_client"  # the client behind a trusted front, set by the router
META_VIA = "pkgcache_via"  # host:port the client connected to, when a trusted front says so
META_FRONT_PATH = "pkgcache_front_path"  # the published path nginx gave the request (the tier): see transfer/frontfetch.py


def client_address(flow: http.HTTPFlow, unknown: str = "?") -> str:
    forwarded = flow.metadata.get(META_CLIENT)
    if forwarded:
        return str(forwarded)
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else unknown


def client_network(flow: http.HTTPFlow) -> str:
    """The client's /24 (IPv4) or /64 (IPv6): what the report groups clients by (a lab, a CI subnet)."""
    return network_of(client_address(flow, ""))
