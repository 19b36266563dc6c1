"""Behind the tier's nginx: a hit on a published file is handed to nginx instead of being sent from here.

nginx serves it by sendfile, with Range, HEAD and conditionals, and counts it
in its log.  Pure of everything but the flow and the store it is given.
"""

from __future__ import annotations

from pathlib import Path

from mitmproxy import http

from pkgcache_suite.policy.frontfetch import FrontFacts, may_redirect, nginx_reads_alike
from pkgcache_suite.storage import CacheStore, Entry
from pkgcache_suite.storage.published import publishable
from pkgcache_suite.tier.protocol import HIT_LOCATION
from pkgcache_suite.transfer.state import MARKERS, FlowState


def front_facts(flow: http.HTTPFlow, st: FlowState, enabled: bool) -> FrontFacts:
    req = flow.request
    return FrontFacts(enabled=enabled, front_path=st.front_path, key=st.key,
                      publishable=publishable(st.key, st.kind.value), method=req.method, scheme=req.scheme,
                      headers=frozenset(k.lower() for k in req.headers.keys()), remapped=st.remapped,
                      via_proxy=flow.server_conn.via is not None,
                      read_alike=nginx_reads_alike(req.headers.items(multi=True)))


def hand_hit_to_front(flow: http.HTTPFlow, st: FlowState, entry: Entry, store: CacheStore,
                      run_dir: Path | None) -> bool:
    """A hit on a published file (a client that waited for a download, a file published since nginx looked):
    True when nginx was told to serve it."""
    if run_dir is None or flow.request.method not in ("GET", "HEAD") or entry.key != st.key \
            or may_redirect(front_facts(flow, st, True)) is not None or not store.published.path(st.key).is_file():
        return False
    flow.response = http.Response.make(200, b"", {"X-Accel-Redirect": HIT_LOCATION})
    flow.comment = f"pkgcache: HIT ({st.kind.value}, served by the front)"
    flow.marked = MARKERS["HIT"]
    st.x_cache = "HIT"
    return True
