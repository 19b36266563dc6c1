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
    # RFC 9111 section 4.2: package files are fresh for ever; RFC 9110 section 9.3.2: HEAD from stored headers
    (RequestFacts("GET", I, cached=True), Decision.HIT),
    (RequestFacts("HEAD", V, cached=True), Decision.HIT),
    (RequestFacts("GET", I, cached=True, offline=True), Decision.HIT),
    # indexes: whether upstream is reachable decides, so it is asked for
    (RequestFacts("GET", V, cached=True), Decision.ASK_OFFLINE),
    # RFC 9111 section 4.2.4: stale when the origin cannot be reached
    (RequestFacts("GET", V, cached=True, offline=True), Decision.STALE),
    # RFC 9111 section 4.3.1: a conditional request validates the stored index
    (RequestFacts("GET", V, cached=True, offline=False), Decision.REVALIDATE),
    # one revalidation at a time: the others take the copy being revalidated
    (RequestFacts("GET", V, cached=True, offline=False, revalidating_elsewhere=True), Decision.HIT),
    # misses
    (RequestFacts("GET", I, cached=False), Decision.ASK_OFFLINE),
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
