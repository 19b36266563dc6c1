"""The cache addon's hooks with mitmproxy's taddons and tflow: no sockets."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.test import taddons, tflow, tutils

from support.hooks import cache_suite



async def test_a_failure_while_deciding_leaves_the_response_streamed_and_unstored(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    with cache_suite(pkgcache_dir=str(tmp_path / "c")) as (core, tctx):
        f = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"))
        await core.request(f)
        assert f.id in core.flows
        f.response = tutils.tresp(content=b"x" * 10)

        def boom(*_a, **_k):
            raise RuntimeError("unexpected")

        monkeypatch.setattr("pkgcache_suite.transfer.download.admit", boom)
        core.responseheaders(f)
        assert f.response.stream is True
        assert f.id not in core.flows
        store = core.storage.store
        assert store is not None
        lock = store.try_lock("mirror.example/debian/pool/x_1_all.deb")  # the lead was given up
        assert lock is not None
        lock.release()
        store.close()


async def test_hooks_leave_errored_and_answered_flows_alone(tmp_path: Path) -> None:
    with cache_suite(pkgcache_dir=str(tmp_path / "c")) as (core, tctx):
        f = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), err=True)
        await core.request(f)
        assert f.id not in core.flows
        g = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), resp=True)
        await core.request(g)
        assert g.id not in core.flows
        assert core.storage.store is not None
        core.storage.store.close()


def test_under_mitmweb_the_comment_column_is_shown(tmp_path: Path) -> None:
    from mitmproxy.tools.web.webaddons import WebAddon
    from pkgcache_suite.proxy.suite import build_addons

    addons = build_addons()
    core = addons[2]
    with taddons.context(WebAddon(), *addons) as tctx:
        tctx.options.update(pkgcache_dir=str(tmp_path / "c"))
        for addon in addons:
            if hasattr(addon, "configure"):
                addon.configure(set(tctx.options.keys()))  # as mitmproxy does when it loads a script
        assert "comment" in tctx.options.web_columns
        assert core.storage.store is not None
        addons[4].done()  # the store addon closes the store


async def test_behind_the_tiers_nginx_a_leading_miss_is_handed_to_nginx(tmp_path: Path) -> None:
    """The worker keeps the lock and answers nginx with where to fetch; a request nginx did not vouch for,
    or a Range on a miss, is fetched by the worker itself."""
    from pkgcache_suite.proxy.flowinfo import META_FRONT_PATH
    import os

    from pkgcache_suite.tier.protocol import FETCH_LOG, FETCH_PREFIX, NGINX_PID

    run = tmp_path / "run"
    run.mkdir()
    (run / FETCH_LOG).touch()
    (run / NGINX_PID).write_text(f"{os.getpid()}\n")  # a live process stands for nginx
    key = "192.0.2.7/debian/pool/x_1_all.deb"
    with cache_suite(pkgcache_dir=str(tmp_path / "c"), pkgcache_front_fetch=str(run)) as (core, tctx):
        f = tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path="/debian/pool/x_1_all.deb"))
        f.metadata[META_FRONT_PATH] = key
        await core.request(f)
        assert f.response is not None and f.response.content == b""
        where = f.response.headers["X-Accel-Redirect"]
        assert where.startswith(FETCH_PREFIX) and where.endswith("/192.0.2.7:80/192.0.2.7")
        store = core.storage.store
        assert store is not None and store.try_lock(key) is None  # held until nginx's line is read
        assert len(core.front.pending) == 1 and core.c.flights[key].by_front

        for host, vouched, headers in (("192.0.2.8", False, {}), ("192.0.2.9", True, {"Range": "bytes=0-9"})):
            g = tflow.tflow(req=tutils.treq(host=host, port=80, path="/debian/pool/x_1_all.deb",
                                            headers=tuple((k.encode(), v.encode()) for k, v in headers.items())))
            if vouched:
                g.metadata[META_FRONT_PATH] = key.replace("192.0.2.7", host)
            await core.request(g)
            assert g.response is None and g.id in core.flows  # the worker leads it through mitmproxy
        (run / NGINX_PID).unlink()  # no nginx to watch: nothing is handed to it
        h = tflow.tflow(req=tutils.treq(host="192.0.2.10", port=80, path="/debian/pool/x_1_all.deb"))
        h.metadata[META_FRONT_PATH] = key.replace("192.0.2.7", "192.0.2.10")
        await core.request(h)
        assert h.response is None and h.id in core.flows
        core.front.stop()
        await core.done()


async def test_a_client_joining_a_download_nginx_fetches_waits_a_bounded_time(tmp_path: Path, monkeypatch) -> None:
    """Such a client gets no byte until the download ends; before a client would give up on the silence
    (apt: 30 s), it is sent upstream itself, unstored."""
    import asyncio
    import os

    from pkgcache_suite.proxy.flowinfo import META_FRONT_PATH
    from pkgcache_suite.tier.protocol import FETCH_LOG, NGINX_PID

    monkeypatch.setattr("pkgcache_suite.transfer.answers.FRONT_WAIT", 0.3)
    run = tmp_path / "run"
    run.mkdir()
    (run / FETCH_LOG).touch()
    (run / NGINX_PID).write_text(f"{os.getpid()}\n")
    key = "192.0.2.7/debian/pool/x_1_all.deb"
    with cache_suite(pkgcache_dir=str(tmp_path / "c"), pkgcache_front_fetch=str(run),
                       pkgcache_follow_timeout="3600") as (core, tctx):
        flows = [tflow.tflow(req=tutils.treq(host="192.0.2.7", port=80, path="/debian/pool/x_1_all.deb"))
                 for _ in range(2)]
        for f in flows:
            f.metadata[META_FRONT_PATH] = key
        await core.request(flows[0])
        assert "X-Accel-Redirect" in flows[0].response.headers  # nginx fetches it
        # a worker's download would be waited for up to pkgcache_follow_timeout (an hour here)
        await asyncio.wait_for(core.request(flows[1]), 30)
        assert flows[1].response is None and flows[1].id not in core.flows  # proxied upstream, not stored
        core.front.stop()
        await core.done()
