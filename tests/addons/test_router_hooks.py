"""The router's hooks with mitmproxy's taddons and tflow: access control decided before anything else."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow, tutils

from pkgcache_suite.context import CacheContext
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.proxy.router import META_KEY_HOST, Router


def _flow(host: str, port: int = 80, path: str = "/debian/pool/x.deb", peer: str = "192.0.2.5",
          host_header: str | None = None):
    f = tflow.tflow(req=tutils.treq(host=host, port=port, path=path))
    f.client_conn.peername = (peer, 40000)
    f.client_conn.timestamp_tls_setup = None  # a plain proxy request, not one inside a tunnel
    f.request.host_header = host_header or (host if port == 80 else f"{host}:{port}")
    return f


@pytest.fixture
def router():
    r = Router(CacheContext(), Reachability())
    with taddons.context(r) as tctx:
        yield r, tctx


async def test_the_report_host_is_decided_by_the_target_not_the_host_header(router) -> None:
    r, tctx = router
    tctx.configure(r, pkgcache_allow_ports="80,443")
    f = _flow("192.0.2.9", port=8080, host_header="pkgcache")
    await r.request(f)
    assert f.response is not None and f.response.status_code == 403  # the port check ran


async def test_clients_outside_the_allowed_networks_reach_nothing_not_even_the_report(router) -> None:
    r, tctx = router
    tctx.configure(r, pkgcache_allow_clients="198.51.100.0/24")
    for host in ("pkgcache", "mirror.example"):
        f = _flow(host)
        await r.request(f)
        assert f.response is not None and f.response.status_code == 403, host


@pytest.mark.parametrize("host,refused", [
    ("127.0.0.1", True), ("localhost", True), ("169.254.169.254", True), ("::1", True),
    ("10.1.2.3", False), ("192.168.0.10", False),
])
async def test_loopback_and_link_local_destinations(router, host: str, refused: bool) -> None:
    r, tctx = router
    f = _flow(host)
    await r.request(f)
    assert (f.response is not None and f.response.status_code == 403) is refused


async def test_a_disagreeing_host_header_does_not_name_the_cache_key(router) -> None:
    r, tctx = router
    f = _flow("192.0.2.9", host_header="mirror.example")
    await r.request(f)
    assert f.metadata[META_KEY_HOST] == "192.0.2.9"
    assert f.request.host_header == "192.0.2.9"  # upstream is asked with the target's name


async def test_overlong_input_is_refused_before_routing(router) -> None:
    r, tctx = router
    f = _flow("10.0.0.1")
    f.request.headers["Range"] = "bytes=" + "9" * 300 + "-"
    await r.request(f)
    assert f.response is not None and f.response.status_code == 400


async def test_errored_flows_are_left_alone(router) -> None:
    r, tctx = router
    f = _flow("127.0.0.1")
    f.error = tflow.terr()
    await r.request(f)
    assert f.response is None


def test_options_are_parsed_once_and_bad_values_refused(router) -> None:
    r, tctx = router
    tctx.configure(r, pkgcache_allow_clients="192.0.2.0/24")
    assert [str(n) for n in r.s.allow_clients] == ["192.0.2.0/24"]
    with pytest.raises(exceptions.OptionsError, match="pkgcache_allow_ports"):
        tctx.configure(r, pkgcache_allow_ports="80,http")
    with pytest.raises(exceptions.OptionsError, match="pkgcache_allow_clients"):
        tctx.configure(r, pkgcache_allow_clients="not-a-network")
