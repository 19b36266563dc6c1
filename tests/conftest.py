"""Fixtures that start real parts: an origin on 127.0.0.1, mitmdump with the pkgcache suite, the tier.

The parts themselves live in support/ (imported as ``support.*``); this file holds only fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.origin import Origin
from support.proxy import Proxy
from support.tier import TierProcess


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Origin]:
    (tmp_path / "origin").mkdir()
    o = Origin(tmp_path / "origin").start()
    yield o
    o.stop()


@pytest.fixture
def start_proxy(tmp_path: Path):
    started: list[Proxy] = []

    def start(*extra: str, cache_dir: Path | None = None, **kw) -> Proxy:
        p = Proxy(cache_dir or tmp_path / "cache", *extra, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
    for p in started:  # an addon exception makes mitmproxy skip our hook: a silent wrong answer
        assert "Addon error" not in p.log_text(), p.log_text()


@pytest.fixture
def start_tier(tmp_path: Path):
    """`pkgcache serve --workers N` on loopback, stopped after the test; no worker may have failed."""
    started: list[TierProcess] = []

    def start(*extra: str, cache_dir: Path | None = None, workers: int = 2) -> TierProcess:
        t = TierProcess(cache_dir or tmp_path / "cache", workers, *extra)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()
    for t in started:
        assert "Traceback" not in t.log_text() and "Addon error" not in t.log_text(), t.log_text()


@pytest.fixture
def proxy(start_proxy) -> Proxy:
    return start_proxy()


@pytest.fixture
def apt_tools() -> None:
    """Tests that drive a real apt-get fail (not skip) when its tools are missing: .ci/run installs them."""
    import shutil

    missing = [t for t in ("apt-get", "apt-ftparchive", "dpkg-deb", "gpg", "xz") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run .ci/run, which installs them")
