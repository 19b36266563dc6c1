"""Where a suite's Release and the indexes it names sit in the key space (policy/suites.py): table-driven."""

from __future__ import annotations

import pytest

from pkgcache_suite.policy.suites import bases, by_hash, is_suite_index, release_base

H = "m_80/debian/dists/stable"


@pytest.mark.parametrize(("key", "base"), [
    (f"{H}/InRelease", f"{H}/"),
    (f"{H}/Release", f"{H}/"),
    (f"{H}/updates/InRelease", f"{H}/updates/"),
    (f"{H}/Release.gpg", None),
    ("m_80/debian/pool/InRelease", None),  # not under dists/
    (f"{H}/main/binary-amd64/Packages.xz", None),
])
def test_release_base(key: str, base: str | None) -> None:
    assert release_base(key) == base


@pytest.mark.parametrize(("key", "index"), [
    (f"{H}/main/binary-amd64/Packages.xz", True),
    (f"{H}/main/i18n/Translation-en.bz2", True),
    (f"{H}/main/Contents-amd64.gz", True),
    (f"{H}/main/binary-amd64/by-hash/SHA256/{'a' * 64}", False),  # content-addressed already
    (f"{H}/InRelease", False),
    (f"{H}/Release.gpg", False),
    ("m_80/debian/pool/main/a/alpha/alpha_1.0_all.deb", False),
    (f"{H}/main/binary-amd64/Packages.xz?x=1", False),
])
def test_is_suite_index(key: str, index: bool) -> None:
    assert is_suite_index(key) is index


def test_bases_deepest_first_and_by_hash_names() -> None:
    key = f"{H}/main/binary-amd64/Packages.xz"
    assert bases(key) == [f"{H}/main/binary-amd64/", f"{H}/main/", f"{H}/"]
    assert by_hash(key, "ab") == f"{H}/main/binary-amd64/by-hash/SHA256/ab"
    assert by_hash("http://m/debian/dists/stable/main/binary-amd64/Packages.xz", "ab").endswith(
        "/binary-amd64/by-hash/SHA256/ab")
