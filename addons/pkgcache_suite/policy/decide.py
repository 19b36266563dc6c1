"""What the cache does with a request, and with upstream's answer: pure decisions from facts.

The request side is a small state machine.  The proxy gathers what it knows for
free (method, class, whether a whole copy is cached) and asks :func:`decide`,
which answers with one state of :class:`Decision`.  Two states ask for a fact
that costs something, and the proxy asks again once it has it:

    NEED_REACHABILITY  whether upstream can be reached (a probe, offline/reachability.py)
    NEED_LOCK          whether this request may revalidate the copy (another may hold it)

Every other state is final and the proxy carries it out (proxy/cache.py drives
them in one ``match``).  Package files are immutable, so a cached copy is served
without asking upstream; indexes are volatile and revalidated; offline, copies
are served stale and misses are answered locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pkgcache_suite.policy.rules import Kind


class Decision(str, Enum):
    PASS = "pass"  # proxy it untouched, store nothing
    REFUSE = "refuse"  # answer it locally with an error: an unsafe URL, or upstream is never to be contacted
    HIT = "hit"  # answer from the cached copy, upstream not asked
    STALE = "stale"  # answer from the cached copy although it could not be revalidated
    REVALIDATE = "revalidate"  # ask upstream whether the cached copy is still current (this request holds the lock)
    LEAD = "lead"  # fetch it (or follow whoever already fetches it) and store it
    OFFLINE_MISS = "offline_miss"  # answer locally that it is not cached, and record it as wanted
    KNOWN_MISSING = "known_missing"  # upstream said 404 a short while ago: say so again, locally
    NEED_REACHABILITY = "need_reachability"  # the answer depends on whether upstream is reachable: find out, ask again
    NEED_LOCK = "need_lock"  # revalidation is due: try to take it, ask again
    SERVE_THEN_REFRESH = "serve_then_refresh"  # answer from the cached copy at once, refresh it in the background


FINAL = frozenset(Decision) - {Decision.NEED_REACHABILITY, Decision.NEED_LOCK}


@dataclass(frozen=True)
class RequestFacts:
    method: str
    kind: Kind
    cached: bool = False  # a whole copy is in the cache
    no_store: bool = False  # the admin's DontCache (or a remap's no-cache) matched
    never_upstream: bool = False  # pkgcache_offline=on: nothing is ever sent upstream
    unsafe: bool = False  # the URL cannot be filed (a path that climbs, bytes that are no text)
    offline: bool | None = None  # None: not found out yet
    locked: bool | None = None  # None: not tried; True: this request revalidates; False: another one does
    missing_age: float | None = None  # seconds since upstream answered 404 for it, if it did
    negative_ttl: float = 0.0  # how long such a 404 is repeated without asking upstream again
    young: bool = False  # the cached index was confirmed upstream within pkgcache_index_fresh (not a refresh itself)


def cacheable(method: str, kind: Kind, no_store: bool) -> bool:
    """RFC 9111 section 2: only responses to methods the cache understands are stored (GET, and HEAD answered
    from a stored GET); the classifier and the admin may exempt URLs from caching.  The proxy asks this before
    it spends anything on a request (a cache key, a lookup); :func:`decide` rests on it too."""
    return method in ("GET", "HEAD") and kind is not Kind.PASS and not no_store


def decide(f: RequestFacts) -> Decision:
    """One rule per branch; each cites what it rests on."""
    if not cacheable(f.method, f.kind, f.no_store):
        # pkgcache_offline=on promises that upstream is never contacted, whatever the URL
        return Decision.REFUSE if f.never_upstream else Decision.PASS
    if f.unsafe:
        return Decision.REFUSE  # a key that would climb out of the cache, or name no file: never sent on
    if f.cached:
        return _cached(f)
    if f.offline is None:
        return Decision.NEED_REACHABILITY
    if f.missing_age is not None and (f.offline or f.missing_age < f.negative_ttl):
        # RFC 9111 section 4.2.2 lets a cache reuse a 404 heuristically; probes (zypper's media.1/media,
        # repomd.xml.asc) would otherwise go upstream on every refresh. Offline, a file upstream said does
        # not exist is not wanted: fetching it later would only bring the same 404.
        return Decision.KNOWN_MISSING
    if f.offline:
        # Nothing to serve and nobody to ask: say so locally (package managers skip a 404) and record it.
        return Decision.OFFLINE_MISS
    if f.method == "HEAD":
        return Decision.PASS  # a HEAD brings no body to store
    return Decision.LEAD


def _cached(f: RequestFacts) -> Decision:
    if f.method == "HEAD" or f.kind is Kind.IMMUTABLE:
        # Package files never change under one name (repository formats publish a new name per
        # version; by-hash names are digests): fresh for ever, RFC 9111 section 4.2. A HEAD needs only
        # the stored headers, RFC 9110 section 9.3.2.
        return Decision.HIT
    if f.offline is None:
        return Decision.NEED_REACHABILITY
    if f.offline:
        # RFC 9111 section 4.2.4: a stale copy may be served when the origin cannot be reached.
        return Decision.STALE
    if f.young:
        # RFC 5861 section 3 (stale-while-revalidate): the client is answered now; one refresh runs meanwhile.
        return Decision.SERVE_THEN_REFRESH
    if f.locked is None:
        return Decision.NEED_LOCK
    if not f.locked:
        # Someone is revalidating this copy right now: it is as fresh as their answer will be
        # (one conditional request per index, not one per client).
        return Decision.HIT
    # Indexes are volatile: validated with a conditional request, RFC 9111 section 4.3.1.
    return Decision.REVALIDATE


class Answer(str, Enum):
    STORE = "store"  # a 200 with an identity body: store it while it streams (if admission agrees)
    REVALIDATED = "revalidated"  # 304: the cached copy is current, serve it
    STALE = "stale"  # a server error while revalidating: serve the cached copy, marked stale
    PASS = "pass"  # anything else: pass it on unstored


def answer(revalidating: bool, status: int, content_encoding: str | None) -> Answer:
    """What to do with upstream's response headers for a request the cache leads or revalidates."""
    if status == 200 and not content_encoding:
        # Only whole, identity-encoded bodies are stored: a 206 is a part (RFC 9110 section 15.3.7), and
        # an encoded body is not the file a later client may ask for without that encoding.
        return Answer.STORE
    if revalidating and status == 304:
        return Answer.REVALIDATED  # RFC 9111 section 4.3.4: update the stored copy's freshness, serve it
    if revalidating and status >= 500:
        return Answer.STALE  # RFC 9111 section 4.2.4: an error while revalidating may be answered stale
    return Answer.PASS  # 404 and other answers are passed on: never stored as the file
