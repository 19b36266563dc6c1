"""Background refreshes of indexes answered from the cache at once (RFC 5861 stale-while-revalidate).

The refresh is the client's own request, copied and replayed through mitmproxy (its client replay), so it
takes the same network path as every other request (upstream proxy, TLS trust, mirror remapping) and the
same revalidation and store as a client's refresh would; one per index at a time.  The router lets the
copy through as the original was let through, and the cache treats it as a refresh, never as young.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http

log = logging.getLogger("pkgcache")

META_REFRESH = "pkgcache_refresh"  # set on the copy: the key it refreshes


class Refresher:
    def __init__(self) -> None:
        self.pending: set[str] = set()

    @staticmethod
    def is_refresh(flow: http.HTTPFlow) -> bool:
        return bool(flow.metadata.get(META_REFRESH))

    def start(self, flow: http.HTTPFlow, key: str) -> bool:
        """Refresh key in the background with a copy of flow's request, unless a refresh of it runs already."""
        if key in self.pending:
            return False
        copy = flow.copy()
        copy.metadata[META_REFRESH] = key
        try:
            ctx.master.commands.call("replay.client", [copy])
        except Exception as e:  # no client replay (a bare addon host): the next request revalidates
            log.warning("pkgcache: cannot refresh %s in the background: %s", flow.request.pretty_url, e)
            return False
        self.pending.add(key)
        return True

    def finished(self, flow: http.HTTPFlow) -> None:
        key = flow.metadata.get(META_REFRESH)
        if key:
            self.pending.discard(key)
