"""The cache policy, one case per rule (policy.decide cites the RFC 9110/9111 section behind each)."""

from __future__ import annotations

import pytest

from pkgcache_suite.policy.decide import Answer, Decision, RequestFacts, answer, decide
from pkgcache_suite.policy.rules import Kind

I, V, P = Kind.IMMUTABLE, Kind.VOLATILE, Kind.PASS


@pytest.mark.parametrize("facts,want", [
    # RFC 9111 section 2: only GET (and HEAD from a stored GET) is cached; classes and DontCache exempt URLs
    (RequestFacts("POST", I, cached=True), Decision.PASS),
    (RequestFacts("PUT", V, cached=False), Decision.PASS),
    (RequestFacts("GET", P, cached=False), Decision.PASS),
    (RequestFacts("GET", I, cached=False, no_store=True), Decision.PASS),
    # pkgcache_offline=on: what is not cached is refused locally, never sent upstream
    (RequestFacts("POST", I, never_upstream=True), Decision.REFUSE),
    (RequestFacts("GET", P, never_upstream=True), Decision.REFUSE),
    (RequestFacts("GET", I, never_upstream=True, cached=True), Decision.HIT),
    # a URL that cannot be filed is refused, but only where the cache would have filed it
    (RequestFacts("GET", I, unsafe=True), Decision.REFUSE),
    (RequestFacts("POST", I, unsafe=True), Decision.PASS),
    # RFC 9111 section 4.2: package files are fresh for ever; RFC 9110 section 9.3.2: HEAD from stored headers
    (RequestFacts("GET", I, cached=True), Decision.HIT),
    (RequestFacts("HEAD", V, cached=True), Decision.HIT),
    (RequestFacts("GET", I, cached=True, offline=True), Decision.HIT),
    # indexes: whether upstream is reachable decides, so it is asked for
    (RequestFacts("GET", V, cached=True), Decision.NEED_REACHABILITY),
    # RFC 9111 section 4.2.4: stale when the origin cannot be reached
    (RequestFacts("GET", V, cached=True, offline=True), Decision.STALE),
    # RFC 9111 section 4.3.1: a conditional request validates the stored index
    (RequestFacts("GET", V, cached=True, offline=False), Decision.NEED_LOCK),
    (RequestFacts("GET", V, cached=True, offline=False, locked=True), Decision.REVALIDATE),
    # one revalidation at a time: the others take the copy being revalidated
    (RequestFacts("GET", V, cached=True, offline=False, locked=False), Decision.HIT),
    # misses
    (RequestFacts("GET", I, cached=False), Decision.NEED_REACHABILITY),
    (RequestFacts("GET", V, cached=False, offline=True), Decision.OFFLINE_MISS),
    (RequestFacts("HEAD", I, cached=False, offline=True), Decision.OFFLINE_MISS),
    (RequestFacts("GET", I, cached=False, offline=False), Decision.LEAD),
    (RequestFacts("HEAD", I, cached=False, offline=False), Decision.PASS),
    # RFC 9111 section 4.2.2: a recent 404 is repeated; offline, a file known not to exist is not wanted
    (RequestFacts("GET", V, cached=False, offline=False, missing_age=10, negative_ttl=300), Decision.KNOWN_MISSING),
    (RequestFacts("GET", V, cached=False, offline=False, missing_age=400, negative_ttl=300), Decision.LEAD),
    (RequestFacts("GET", I, cached=False, offline=False, missing_age=1, negative_ttl=0), Decision.LEAD),
    (RequestFacts("GET", I, cached=False, offline=True, missing_age=9999, negative_ttl=300), Decision.KNOWN_MISSING),
    (RequestFacts("GET", I, cached=True, offline=True, missing_age=1, negative_ttl=300), Decision.HIT),
])
def test_request_decisions(facts: RequestFacts, want: Decision) -> None:
    assert decide(facts) is want


def test_every_walk_ends_in_a_final_state() -> None:
    """Answering each question the way the proxy would ends every request in a final state within two asks."""
    from dataclasses import replace
    from itertools import product
    from pkgcache_suite.policy.decide import FINAL
    for method, kind, cached, offline, locked in product(("GET", "HEAD", "POST"), Kind, (True, False),
                                                          (True, False), (True, False)):
        facts = RequestFacts(method, kind, cached=cached)
        for _ in range(3):
            d = decide(facts)
            if d in FINAL:
                break
            facts = replace(facts, offline=offline) if d is Decision.NEED_REACHABILITY else replace(facts, locked=locked)
        assert d in FINAL, (method, kind, cached, offline, locked)


@pytest.mark.parametrize("revalidating,status,encoding,want", [
    (False, 200, None, Answer.STORE),
    (True, 200, None, Answer.STORE),  # a new version of the index replaces the old
    (False, 200, "gzip", Answer.PASS),  # an encoded body is not the file
    (False, 206, None, Answer.PASS),  # RFC 9110 section 15.3.7: a part is not the file
    (True, 304, None, Answer.REVALIDATED),  # RFC 9111 section 4.3.4
    (True, 503, None, Answer.STALE),  # RFC 9111 section 4.2.4
    (False, 503, None, Answer.PASS),
    (True, 404, None, Answer.PASS),
    (False, 404, None, Answer.PASS),
    (False, 304, None, Answer.PASS),  # no conditional was sent upstream on a lead: pass whatever this is
])
def test_response_decisions(revalidating: bool, status: int, encoding: str | None, want: Answer) -> None:
    assert answer(revalidating, status, encoding) is want


def test_a_young_index_is_served_at_once_and_refreshed_in_the_background() -> None:
    from pkgcache_suite.policy.decide import Decision, RequestFacts, decide
    from pkgcache_suite.policy.rules import Kind

    young = RequestFacts("GET", Kind.VOLATILE, cached=True, offline=False, young=True)
    assert decide(young) is Decision.SERVE_THEN_REFRESH
    assert decide(RequestFacts("GET", Kind.VOLATILE, cached=True, offline=True, young=True)) is Decision.STALE
    assert decide(RequestFacts("GET", Kind.VOLATILE, cached=True, offline=False)) is Decision.NEED_LOCK
    assert decide(RequestFacts("GET", Kind.IMMUTABLE, cached=True, young=True)) is Decision.HIT
