"""The engines' trust boundary in a worker: no upstream header reaches nginx or HAProxy as an instruction.

Behind the tier, nginx acts on ``X-Accel-*`` headers in what a worker hands
it: ``X-Accel-Redirect`` makes it serve a published file or fetch from an
address, the others change its buffering, speed and caching.  A worker's own
answers carry the ones it chose; an upstream's response must carry none, or a
mirror (or any web site a client fetches through the proxy) could make nginx
fetch from an address the access rules refuse.  ``X-Cache`` says what the
cache did, so an upstream's is dropped too and the worker states its own.

Two addons, because mitmproxy runs the ``responseheaders`` hook for answers an
addon made in the ``request`` hook as well: :class:`MarkOwnAnswers` runs after
every other ``request`` hook and marks such answers as the worker's (a hit
routed to the loopback file server is marked when it is routed);
:class:`StripEngineHeaders` runs before every other ``responseheaders`` hook
and cleans every response that is not marked, whichever path it takes
(streamed, buffered, revalidated, passed through, HTTPS, remapped, via an
upstream proxy, an error status).
"""

from __future__ import annotations

import logging

from mitmproxy import http

from pkgcache_suite.transfer.state import OWN_ANSWER as OWN

log = logging.getLogger("pkgcache")

ENGINE_PREFIX = "x-accel-"  # nginx's instructions to itself
CACHE_STATUS = "x-cache"  # what the cache did: stated by the worker alone


def engine_headers(names: list[str]) -> list[str]:
    """The header names (as given) that an engine in front of the workers would act on or that the worker
    states itself: pure, so the rule is tested as a table."""
    return [n for n in names if n.lower().startswith(ENGINE_PREFIX) or n.lower() == CACHE_STATUS]


class MarkOwnAnswers:
    """Placed last: a response present when every ``request`` hook has run was made by the worker."""

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.metadata[OWN] = True


class StripEngineHeaders:
    """Placed first: an upstream response loses every header an engine would act on, before any other
    addon looks at it."""

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or flow.metadata.get(OWN):
            return
        try:
            found = engine_headers(list(resp.headers.keys()))
            for name in dict.fromkeys(n.lower() for n in found):
                del resp.headers[name]
            if any(n.lower().startswith(ENGINE_PREFIX) for n in found):
                log.info("pkgcache: %s: dropped %s from upstream's response", flow.request.pretty_url,
                         ", ".join(sorted({n for n in found if n.lower().startswith(ENGINE_PREFIX)})))
        except Exception:  # never let a response through uncleaned: drop it whole instead
            log.exception("pkgcache: %s: could not clean upstream's response; refusing it", flow.request.url)
            flow.response = http.Response.make(502, b"pkgcache: upstream's response could not be checked\n",
                                               {"Content-Type": "text/plain", "X-Cache": "MISS"})
            flow.metadata[OWN] = True
