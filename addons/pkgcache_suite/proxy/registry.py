"""A container registry's requests where the cache answers them itself: the API's version check offline,
and a manifest by tag that came from a datastore in a type this client accepts."""

from __future__ import annotations

from mitmproxy import http

from pkgcache_suite.policy import oci
from pkgcache_suite.storage import CacheStore, Entry
from pkgcache_suite.transfer.state import FlowState


def registry_offline(flow: http.HTTPFlow) -> None:
    """A registry's version check, offline: answered as a registry that asks for no token would, so the
    client goes on to the manifests and blobs the cache holds."""
    flow.response = http.Response.make(200, b"{}\n", {"Content-Type": "application/json", **dict(oci.API_HEADERS),
                                                     "X-Cache": "STALE"})
    flow.comment = "pkgcache: offline registry version check, answered here"


def other_manifest_variant(store: CacheStore, st: FlowState) -> Entry | None:
    """A manifest by tag that this client's set of accepted types has not fetched yet, but that came in
    from a datastore (filed under the plain URL) in a type it accepts: that copy, revalidated as its own."""
    base = st.key.split("~oci-", 1)[0]
    entry = store.lookup(base)
    if entry is None or not oci.acceptable(entry.content_type, st.accept):
        return None
    st.key = base
    return entry
