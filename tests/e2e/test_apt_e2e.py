"""A real apt-get, with a private state dir, through pkgcache against a repository the test builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.proxy import Proxy
from support.debrepo import AptClient, build_deb, write_indexes
from support.origin import Origin

pytestmark = pytest.mark.usefixtures("apt_tools")


def test_apt_update_and_install_through_proxy_then_from_cache(origin: Origin, proxy: Proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    debs = [
        build_deb(repo, "alpha", "1.0", 50_000),
        build_deb(repo, "beta", "2.1", 2_000_000, depends="alpha"),
        build_deb(repo, "gamma", "0.3", 10_000),
    ]
    write_indexes(repo)
    url = f"{origin.base}/debian"

    from support.recipes import block

    recipe = block("debian.md", 0, proxy.url.removeprefix("http://"))
    conf = re.search(r"echo '([^']+)'", recipe).group(1)  # what the recipe puts in apt.conf.d, as written
    first = AptClient(tmp_path / "apt1", url, conf=conf)
    first.run("update")
    first.run("install", "--download-only", "beta", "gamma")
    assert {p.name for p in first.archives()} == {d.name for d in debs}

    # a second machine (fresh state) and the first one again after cleaning its archive
    second = AptClient(tmp_path / "apt2", url, proxy=proxy.url)
    second.run("update")
    second.run("install", "--download-only", "beta", "gamma")
    first.clean()
    first.run("install", "--download-only", "beta", "gamma")
    for client in (first, second):
        got = {p.name: p.read_bytes() for p in client.archives()}
        assert got == {d.name: d.read_bytes() for d in debs}

    deb_requests = [r.path for r in origin.log if r.path.endswith(".deb")]
    assert sorted(deb_requests) == sorted(f"/debian/{d.relative_to(repo)}" for d in debs), deb_requests
    # indexes were revalidated, not re-downloaded: the second update only asked conditionally
    inrelease = [r for r in origin.log if r.path.endswith("/InRelease")]
    assert len(inrelease) >= 2
    assert all("if-none-match" in r.headers or "if-modified-since" in r.headers for r in inrelease[1:])
    with proxy.client() as c:
        stats = c.get("http://pkgcache/stats.json").json()
    assert stats["by_kind"]["immutable"]["hit"] >= 6
