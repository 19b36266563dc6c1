"""containerd's mirror requests (`/v2/...?ns=REGISTRY`) name the registry they are for."""

from __future__ import annotations

import pytest
from mitmproxy.test import tflow, tutils

from pkgcache_suite.proxy.mirrorstyle import mirror_style
from pkgcache_suite.repos.config import RepoConfig

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("path, url", [
    (f"/v2/team/app/blobs/{D}?ns=registry.example", f"https://registry.example/v2/team/app/blobs/{D}"),
    ("/v2/library/app/manifests/1?ns=registry.example:5000", "https://registry.example:5000/v2/library/app/manifests/1"),
])
def test_ns_names_the_registry_and_is_not_passed_on(path: str, url: str) -> None:
    f = tflow.tflow(req=tutils.treq(host="127.0.0.1", port=9, path=path))
    assert mirror_style(f, RepoConfig()) == ""
    assert f.request.url == url and f.request.host_header == url.split("/")[2]


@pytest.mark.parametrize("ns", ["evil.example/../x", "-x.example", "a b", "x.example:99999999"])
def test_an_ns_that_is_no_registry_is_refused(ns: str) -> None:
    f = tflow.tflow(req=tutils.treq(host="127.0.0.1", port=9, path="/v2/a/manifests/1"))
    f.request.query["ns"] = ns
    assert "names no registry" in (mirror_style(f, RepoConfig()) or "")
