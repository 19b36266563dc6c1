"""The cache addon's hooks with mitmproxy's taddons and tflow: no sockets."""

from __future__ import annotations

from pathlib import Path

from mitmproxy.test import taddons, tflow, tutils

from pkgcache_suite.context import CacheContext
from pkgcache_suite.proxy.cache import CacheCore



async def test_a_failure_while_deciding_leaves_the_response_streamed_and_unstored(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    core = CacheCore(CacheContext())
    with taddons.context(core) as tctx:
        tctx.configure(core, pkgcache_dir=str(tmp_path / "c"))
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
        store = core.c.store
        assert store is not None
        lock = store.try_lock("mirror.example/debian/pool/x_1_all.deb")  # the lead was given up
        assert lock is not None
        lock.release()
        store.close()


async def test_hooks_leave_errored_and_answered_flows_alone(tmp_path: Path) -> None:
    core = CacheCore(CacheContext())
    with taddons.context(core) as tctx:
        tctx.configure(core, pkgcache_dir=str(tmp_path / "c"))
        f = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), err=True)
        await core.request(f)
        assert f.id not in core.flows
        g = tflow.tflow(req=tutils.treq(host="mirror.example", port=80, path="/debian/pool/x_1_all.deb"), resp=True)
        await core.request(g)
        assert g.id not in core.flows
        assert core.c.store is not None
        core.c.store.close()


def test_under_mitmweb_the_comment_column_is_shown(tmp_path: Path) -> None:
    from mitmproxy.tools.web.webaddons import WebAddon

    core = CacheCore(CacheContext())
    with taddons.context(WebAddon(), core) as tctx:
        tctx.options.update(pkgcache_dir=str(tmp_path / "c"))
        core.configure(set(tctx.options.keys()))
        assert "comment" in tctx.options.web_columns
        assert core.c.store is not None
        core.c.store.close()
