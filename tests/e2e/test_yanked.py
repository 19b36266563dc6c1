"""Yanks, deprecations and deletions with the real clients: PEP 592 yank markers and npm deprecations reach the
client from the cache, online and offline; a version that disappears upstream is kept, served offline, and
named on the dashboard, and the refreshed index no longer offers it as the newest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from support.clients import _npm, _pip
from support.ecosystems import build_wheel
from support.origin import Behaviour, Origin
from support.proxy import wait_for


WHEELS = {v: build_wheel(version=v) for v in ("1.0", "1.1", "1.2")}  # built once: a rebuild has other bytes


def _page(origin: Origin, versions: dict[str, bool]) -> dict[str, str]:
    """/simple/demo/ listing these versions ({version: yanked}); {version: wheel path}."""
    links, paths = [], {}
    for v, yanked in versions.items():
        name, data = WHEELS[v]
        paths[v] = f"/files/{name}"
        origin.put(paths[v], data)
        mark = ' data-yanked="broken build"' if yanked else ""
        links.append(f'<a href="{paths[v]}#sha256={hashlib.sha256(data).hexdigest()}"{mark}>{name}</a>')
    html = ("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>\n").encode()
    origin.behaviours["/simple/demo/"] = Behaviour(negotiate={"text/html": (html, "text/html")})
    return paths


def test_pip_yanked_and_withdrawn_versions(origin: Origin, start_proxy, tmp_path: Path) -> None:
    paths = _page(origin, {"1.0": False, "1.1": True, "1.2": False})
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    got = tmp_path / "online"
    assert _pip(proxy, origin, got).returncode == 0
    assert [p.name for p in got.iterdir()] == ["demo-1.2-py3-none-any.whl"]
    with proxy.client() as c:
        assert c.get(origin.base + paths["1.1"]).status_code == 200  # someone pinned the yanked one
        page = c.get(origin.base + "/simple/demo/", headers={"Accept": "text/html"}).text
    assert 'data-yanked="broken build"' in page  # the marker is passed on as upstream wrote it
    _page(origin, {"1.0": False, "1.1": True})  # 1.2 is deleted upstream
    got = tmp_path / "after"
    assert _pip(proxy, origin, got).returncode == 0
    assert [p.name for p in got.iterdir()] == ["demo-1.0-py3-none-any.whl"]  # never the withdrawn one
    wait_for(lambda: "no longer lists" in proxy.log_text(), what="the withdrawal noticed")
    with proxy.client() as c:
        status = json.loads(c.get("http://pkgcache/stats.json").text)
        board = c.get("http://pkgcache/").text
    assert any(k.endswith("demo-1.2-py3-none-any.whl") for k in status["maintenance"]["withdrawn"])
    assert "Withdrawn upstream" in board and "demo-1.2-py3-none-any.whl" in board
    proxy.stop()
    origin.stop()
    p = start_proxy("--set", "pkgcache_offline=on", cache_dir=cache)
    with p.client() as c:  # kept: a client that pinned it is served offline
        assert c.get(origin.base + paths["1.2"]).headers["x-cache"] == "HIT"
        assert c.get(origin.base + paths["1.1"]).headers["x-cache"] == "HIT"
    got = tmp_path / "offline"
    assert _pip(p, origin, got).returncode == 0
    assert [q.name for q in got.iterdir()] == ["demo-1.0-py3-none-any.whl"]  # the yank still honoured offline


def test_npm_deprecation_reaches_the_client_online_and_offline(origin: Origin, start_proxy, tmp_path: Path) -> None:
    from support.ecosystems import serve_npm

    serve_npm(origin)
    negotiate = origin.behaviours["/demo-pkg"].negotiate
    for accept, (body, ctype) in list(negotiate.items()):
        doc = json.loads(body)
        doc["versions"]["1.0.0"]["deprecated"] = "use something else"
        negotiate[accept] = (json.dumps(doc).encode(), ctype)
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    r = _npm(proxy, origin, tmp_path / "online")
    assert r.returncode == 0 and "use something else" in r.stdout + r.stderr
    proxy.stop()
    origin.stop()
    p = start_proxy("--set", "pkgcache_offline=on", cache_dir=cache)
    r = _npm(p, origin, tmp_path / "offline")
    assert r.returncode == 0 and "use something else" in r.stdout + r.stderr, r.stdout + r.stderr
