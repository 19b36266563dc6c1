"""Retention policy: which files the size limit evicts, and what pins protect (pure)."""

from __future__ import annotations

import pytest

from pkgcache_suite.maintenance.pins import is_pinned
from pkgcache_suite.maintenance.retention import Candidate, plan_evict


def C(key: str, length: int = 100, used: float = 0.0, listed: bool = False, volatile: bool = False,
      pinned: bool = False, busy: bool = False) -> Candidate:
    return Candidate(key, length, used, listed, volatile, pinned, busy)


@pytest.mark.parametrize("files,max_size,expected", [
    ([C("a"), C("b")], 0, []),  # no limit
    ([C("a"), C("b")], 200, []),  # fits
    ([C("old", used=1), C("new", used=2)], 150, ["old"]),  # least recently used first
    ([C("listed", used=1, listed=True), C("unlisted", used=2)], 150, ["unlisted"]),  # unreferenced first
    ([C("index", used=1, volatile=True), C("pkg", used=2, listed=True)], 150, ["pkg"]),  # indexes last
    ([C("pinned", used=1, pinned=True), C("busy", used=1, busy=True), C("x", used=3)], 250, ["x"]),
    ([C("a", used=1), C("b", used=2), C("c", used=3), C("d", used=4)], 300, ["a", "b"]),  # down to 90%
    ([C("pinned", pinned=True, length=500)], 100, []),  # nothing may go: nothing goes
])
def test_plan_evict(files: list[Candidate], max_size: int, expected: list[str]) -> None:
    assert plan_evict(files, max_size) == expected


@pytest.mark.parametrize("patterns,key,url,pinned", [
    ([], "m/pool/a.deb", "", False),
    (["*/pool/main/l/linux/*"], "m/debian/pool/main/l/linux/k.deb", "", True),
    (["http://mirror.example/keep/*"], "mirror.example/keep/x.rpm", "http://mirror.example/keep/x.rpm", True),
    (["*.iso"], "m/x.deb", "http://m/x.deb", False),
])
def test_is_pinned(patterns: list[str], key: str, url: str, pinned: bool) -> None:
    assert is_pinned(patterns, key, url) is pinned
