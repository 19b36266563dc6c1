"""What a front (the tier's HAProxy and nginx, a cluster's balancer) tells a worker, and requests addressed
to the proxy itself.

Headers from a front are believed only from the addresses in
pkgcache_trusted_front; they are removed from every request either way, so
upstream learns nothing of the tier's inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mitmproxy import http
from mitmproxy.proxy.mode_specs import RegularMode

from pkgcache_suite.policy.access import client_allowed
from pkgcache_suite.proxy import report
from pkgcache_suite.proxy.flowinfo import META_CLIENT, META_FRONT_PATH, META_VIA
from pkgcache_suite.tier.protocol import AUTHORITY, DIRECT, ENGINE, VIA
from pkgcache_suite.transfer.resolver import Resolver

TIER_HEADERS = ("x-forwarded-for", AUTHORITY.lower(), DIRECT.lower(), VIA.lower(), ENGINE.lower())


def take_forwarded(flow: http.HTTPFlow, trusted_front: Sequence[Any]) -> None:
    """Behind a trusted front, the client is the last address its X-Forwarded-For names (the front
    replaces whatever the client sent), and the front says when a request was addressed to the proxy
    itself and at which address; from anyone else these headers mean nothing.  They are dropped either
    way: upstream learns nothing of the tier's inside."""
    h = flow.request.headers
    said = {name: h.get_all(name) for name in TIER_HEADERS if name in h}
    for name in said:
        del h[name]
    peer = flow.client_conn.peername
    if not said or not trusted_front or not client_allowed(str(peer[0]) if peer else None, trusted_front):
        return
    last = said.get("x-forwarded-for", [""])[-1].split(",")[-1].strip()
    if last:
        flow.metadata[META_CLIENT] = last
    if said.get(DIRECT.lower()):
        flow.metadata[report.META_DASHBOARD] = True
    if via := said.get(VIA.lower(), [""])[-1].strip():
        flow.metadata[META_VIA] = via
    if engine := said.get(ENGINE.lower()):
        flow.metadata[META_FRONT_PATH] = engine[-1]  # the tier's nginx: it may serve or fetch this request


async def addressed_to_proxy(flow: http.HTTPFlow, resolver: Resolver) -> bool:
    """A request whose target is this proxy's own listening address (a browser pointed at
    http://PROXY-HOST:8080/): forwarding it would loop back here, so it is the report's."""
    sock, req = flow.client_conn.sockname, flow.request
    if not sock or not isinstance(flow.client_conn.proxy_mode, RegularMode) or req.port != sock[1]:
        return False
    own = str(sock[0]).removeprefix("::ffff:")
    if req.host == own or req.host.strip("[]") == own:
        return True
    return own in await resolver.addresses(req.host)
