"""The whole addon suite's hooks in mitmproxy's order (taddons, tflow): an upstream response reaches nginx
with no header an engine would act on, whatever path the worker takes; the worker's own answers keep theirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import hooks
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHeadersHook
from mitmproxy.test import taddons, tflow, tutils

from pkgcache_suite.proxy.flowinfo import META_FRONT_PATH
from pkgcache_suite.proxy.suite import build_addons
from pkgcache_suite.tier.protocol import FETCH_LOG, FETCH_PREFIX, NGINX_PID

HOSTILE = (("X-Accel-Redirect", f"{FETCH_PREFIX}{'ab' * 16}/127.0.0.1:9/x"), ("X-Accel-Buffering", "no"),
           ("X-Accel-Limit-Rate", "1"), ("X-Accel-Expires", "86400"), ("x-accel-charset", "koi8-r"),
           ("X-Cache", "HIT"))


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[tuple[taddons.context, list]]:
    addons = build_addons()
    with taddons.context(*addons) as tctx:
        (tmp_path / "ds").mkdir(exist_ok=True)  # a datastore folder is made by its admin
        tctx.options.update(pkgcache_dir=str(tmp_path / "c"), pkgcache_datastore=str(tmp_path / "ds"),
                            pkgcache_offline="off")  # no network here: upstream counts as reachable
        yield tctx, addons
        addons[4].done()  # the store addon


async def _run(tctx: taddons.context, hook: hooks.Hook) -> None:
    await tctx.master.addons.trigger_event(hook)


def _upstream(status: int) -> object:
    return tutils.tresp(status_code=status, headers=tuple((k.encode(), v.encode()) for k, v in HOSTILE),
                        content=b"x" * 100)


@pytest.mark.parametrize("path", ["/debian/pool/main/h/hello/hello_1.0_amd64.deb",  # a package miss
                                  "/debian/dists/stable/InRelease",  # an index
                                  "/some/page.html?q=1"])  # passed through, not cached
@pytest.mark.parametrize("status", [200, 304, 404, 500])
async def test_upstream_engine_headers_never_pass(suite, path: str, status: int) -> None:
    tctx, _ = suite
    f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path=path))
    await _run(tctx, HttpRequestHook(f))
    assert f.response is None  # goes upstream
    f.response = _upstream(status)
    await _run(tctx, HttpResponseHeadersHook(f))
    names = [n.lower() for n in f.response.headers.keys()]
    assert not [n for n in names if n.startswith("x-accel-")], names
    assert f.response.headers.get_all("X-Cache") == ["MISS"]  # stated by the cache, once


async def test_https_and_an_upstream_proxy_are_cleaned_too(suite) -> None:
    tctx, _ = suite
    f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=443, scheme=b"https",
                                    path="/debian/pool/main/h/hello/hello_1.0_amd64.deb"))
    f.server_conn.via = ("http", ("192.0.2.99", 3128))
    await _run(tctx, HttpRequestHook(f))
    f.response = _upstream(200)
    await _run(tctx, HttpResponseHeadersHook(f))
    assert not [n for n in f.response.headers.keys() if n.lower().startswith("x-accel-")]


@pytest.mark.parametrize("path", ["/debian/pool/main/h/hello/hello_1.0_amd64.deb", "/debian/dists/stable/InRelease"])
async def test_a_remapped_repository_is_cleaned_too(tmp_path: Path, path: str) -> None:
    conf = tmp_path / "acng.conf"
    conf.write_text("Remap-debrep: /debian http://192.0.2.7/debian ; http://192.0.2.8/debian\n")
    addons = build_addons()
    with taddons.context(*addons) as tctx:
        (tmp_path / "ds").mkdir(exist_ok=True)  # a datastore folder is made by its admin
        tctx.options.update(pkgcache_dir=str(tmp_path / "c"), pkgcache_datastore=str(tmp_path / "ds"),
                            pkgcache_offline="off",
                            pkgcache_conf=str(conf))
        f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path=path))
        await _run(tctx, HttpRequestHook(f))
        assert f.response is None and f.request.host == "192.0.2.8"  # sent to the repository's mirror
        f.response = _upstream(200)
        await _run(tctx, HttpResponseHeadersHook(f))
        assert not [n for n in f.response.headers.keys() if n.lower().startswith("x-accel-")]
        assert f.response.headers.get_all("X-Cache") == ["MISS"]
        addons[4].done()  # the store addon


async def test_the_workers_own_redirect_to_nginx_is_kept(suite, tmp_path: Path) -> None:
    """mitmproxy runs responseheaders for an answer made in the request hook as well: the worker's
    X-Accel-Redirect handing a miss to nginx survives it."""
    tctx, addons = suite
    run = tmp_path / "run"
    (run / "grants").mkdir(parents=True)
    (run / FETCH_LOG).touch()
    (run / NGINX_PID).write_text(f"{os.getpid()}\n")
    tctx.options.update(pkgcache_front_fetch=str(run))
    f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path="/debian/pool/main/h/hello/hello_1.0_amd64.deb"))
    f.metadata[META_FRONT_PATH] = "192.0.2.7/debian/pool/main/h/hello/hello_1.0_amd64.deb"
    await _run(tctx, HttpRequestHook(f))
    assert f.response is not None
    where = f.response.headers["X-Accel-Redirect"]
    await _run(tctx, HttpResponseHeadersHook(f))
    assert f.response.headers["X-Accel-Redirect"] == where
    token, target, authority = where.removeprefix(FETCH_PREFIX).split("/")
    assert (run / "grants" / token / target / authority).is_file()  # nginx will fetch this, and only this
    core = addons[2]
    core.front.stop()
    assert not (run / "grants" / token).exists()  # given up with the worker: the token fetches nothing more
    await core.done()


@pytest.mark.parametrize("peer,trusted,believed", [
    ("127.0.0.1", "127.0.0.1,::1", True),  # the tier's own front
    ("192.0.2.50", "127.0.0.1,::1", False),  # a client saying it is the front
    ("127.0.0.1", "", False),  # no front configured: believe no one
])
async def test_the_tiers_headers_are_believed_only_from_the_trusted_front(tmp_path: Path, peer: str,
                                                                          trusted: str, believed: bool) -> None:
    from pkgcache_suite.proxy.flowinfo import META_CLIENT

    addons = build_addons()
    with taddons.context(*addons) as tctx:
        (tmp_path / "ds").mkdir(exist_ok=True)  # a datastore folder is made by its admin
        tctx.options.update(pkgcache_dir=str(tmp_path / "c"), pkgcache_datastore=str(tmp_path / "ds"),
                            pkgcache_offline="off",
                            pkgcache_trusted_front=trusted)
        f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path="/debian/dists/stable/InRelease",
                                        headers=((b"X-Forwarded-For", b"203.0.113.66"),
                                                 (b"X-Pkgcache-Engine", b"192.0.2.7/etc/passwd"))))
        f.client_conn.peername = (peer, 40000)
        await _run(tctx, HttpRequestHook(f))
        assert (f.metadata.get(META_CLIENT) == "203.0.113.66") is believed
        assert (f.metadata.get(META_FRONT_PATH) is not None) is believed
        assert "X-Forwarded-For" not in f.request.headers and "X-Pkgcache-Engine" not in f.request.headers
        addons[4].done()  # the store addon
