"""Precache selection: by suite, component and architecture, matched on the index's name in its Release, so
a by-hash copy counts; or by patterns on URLs and keys."""

from __future__ import annotations

import pytest

from pkgcache_suite.maintenance.precache import Selection

ROOT_URL = "http://mirror.example/debian"
BYHASH = "mirror.example/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab12"


@pytest.mark.parametrize("sel,key,logical,match", [
    (Selection(suites=("bookworm",)), BYHASH, ("bookworm", "main/binary-amd64/Packages.xz"), True),
    (Selection(suites=("bookworm",), components=("main",), archs=("amd64",)), BYHASH,
     ("bookworm", "main/binary-amd64/Packages.xz"), True),
    (Selection(suites=("bookworm",), archs=("arm64",)), BYHASH, ("bookworm", "main/binary-amd64/Packages.xz"), False),
    (Selection(suites=("bookworm",), components=("contrib",)), BYHASH,
     ("bookworm", "main/binary-amd64/Packages.xz"), False),
    (Selection(suites=("trixie",)), BYHASH, ("bookworm", "main/binary-amd64/Packages.xz"), False),
    (Selection(suites=("bookworm*",), archs=("source",)), "k", ("bookworm-updates", "main/source/Sources.xz"), True),
    # the documented pattern matches the index's name even when apt fetched it by-hash
    (Selection(patterns=("*/dists/*/main/binary-amd64/Packages*",)), BYHASH,
     ("bookworm", "main/binary-amd64/Packages.xz"), True),
    (Selection(patterns=("*/repodata/*",)), "m/fedora/repodata/primary.xml.gz", None, True),
    (Selection(suites=("bookworm",)), "m/fedora/repodata/primary.xml.gz", None, False),  # Debian only
])
def test_selection(sel: Selection, key: str, logical: tuple[str, str] | None, match: bool) -> None:
    assert sel.matches(key, "http://" + key, logical, ROOT_URL) is match
