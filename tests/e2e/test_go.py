"""Go modules, the real client (`go mod download`), through pkgcache's mirror-style listener named as GOPROXY,
with a module proxy the test builds: cold, warm, offline in auto and on with the origin gone, and a project's
modules wanted offline, fetched with what they require in one trip, and imported."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pkgcache_suite.tier.supervisor import free_port
from support.goproxy import module_files
from support.origin import Origin
from support.proxy import Proxy, one_trip, wait_for
from support.recipes import block
from support.rpmpac import exports

DEM = {"mods.example/dem": "v0.1.0", "mods.example/Dep": "v1.2.0"}  # an upper-case letter: escaped as !d
EXTRA = {"mods.example/extra": "v0.3.0", "mods.example/extralib": "v0.0.0-20240102030405-0123456789ab"}


def _publish(origin: Origin) -> None:
    files = {**module_files("mods.example/dem", DEM["mods.example/dem"], {"mods.example/Dep": DEM["mods.example/Dep"]}),
             **module_files("mods.example/Dep", DEM["mods.example/Dep"]),
             **module_files("mods.example/extra", EXTRA["mods.example/extra"],
                            {"mods.example/extralib": EXTRA["mods.example/extralib"]}),
             **module_files("mods.example/extralib", EXTRA["mods.example/extralib"])}
    for path, body in files.items():
        origin.put(path, body)


def _project(where: Path, modules: dict[str, str]) -> Path:
    """A module requiring modules, listed as Go 1.17 and later write a go.mod (indirect ones too)."""
    where.mkdir(parents=True)
    (where / "go.mod").write_text("module proj\n\ngo 1.19\n\nrequire (\n"
                                  + "".join(f"\t{m} {v}\n" for m, v in modules.items()) + ")\n")
    return where


def _start(start_proxy, cache: Path, *extra: str) -> tuple[Proxy, int]:
    """pkgcache with a proxy listener and the mirror-style one the recipe names."""
    pport, mport = free_port(), free_port()
    p = start_proxy("--mode", f"regular@127.0.0.1:{pport}", "--mode", f"reverse:http://127.0.0.1:9@127.0.0.1:{mport}",
                    *extra, cache_dir=cache)
    wait_for(lambda: len(p.ports) == 2, what="both listeners")
    return p, mport


def go_download(mport: int, origin: Origin, project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """go mod download with the environment of the recipe's block, as written, and an empty module cache."""
    go = shutil.which("go")
    assert go, "go is not installed"
    text = block("go.md", 0, mirror=f"127.0.0.1:{origin.port}").replace("PROXY-HOST:3142", f"127.0.0.1:{mport}")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(exports(text))
    env["GOFLAGS"] += " -modcacherw"  # the test's module caches can be removed
    env.update(GOSUMDB="off", GOMODCACHE=str(home / "mod"), GOPATH=str(home / "path"), GOCACHE=str(home / "build"),
               HOME=str(home), GOTOOLCHAIN="local")
    return subprocess.run([go, "mod", "download", "-x"], cwd=project, capture_output=True, text=True, timeout=180,
                          env=env)


def test_go_cold_warm_offline_and_one_trip(origin: Origin, start_proxy, tmp_path: Path) -> None:
    _publish(origin)
    project = _project(tmp_path / "proj", DEM)
    cache = tmp_path / "cache"
    proxy, mport = _start(start_proxy, cache)
    for run in ("cold", "warm"):
        r = go_download(mport, origin, project, tmp_path / f"home-{run}")
        assert r.returncode == 0, (run, r.stdout + r.stderr)
        assert (tmp_path / f"home-{run}/mod/mods.example/!dep@v1.2.0/Dep.go").is_file()
    for ext in ("mod", "zip"):  # a released version's files go upstream once
        assert origin.count(f"/mods.example/%21dep/@v/v1.2.0.{ext}")  # go sends ! as %21 == 1
        assert origin.count(f"/mods.example/dem/@v/v0.1.0.{ext}") == 1
    with httpx_client(mport) as c:
        path = f"/127.0.0.1:{origin.port}/mods.example/dem/@v/"
        assert c.get(path + "v0.1.0.zip").headers["x-cache"] == "HIT"
        assert c.get(path + "list").headers["x-cache"] in ("MISS", "REVALIDATED")  # volatile: asked again
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):  # the module proxy is gone
        p, mport = _start(start_proxy, cache, "--set", f"pkgcache_offline={mode}")
        r = go_download(mport, origin, project, tmp_path / f"home-offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-2000:])
        p.stop()
    # modules nobody fetched: wanted offline, fetched with what they require, imported; then go works
    ds = tmp_path / "ds"
    ds.mkdir()
    p, mport = _start(start_proxy, cache, "--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}")
    other = _project(tmp_path / "other", {"mods.example/extra": EXTRA["mods.example/extra"]})
    trips = one_trip(ds, origin, lambda n: go_download(mport, origin, other, tmp_path / f"home-trip-{n}"), "go")
    assert trips == 1 and origin.count("/mods.example/extra/@v/v0.3.0.zip") == 1
    assert origin.count(f"/mods.example/extralib/@v/{EXTRA['mods.example/extralib']}.mod") == 1


def httpx_client(port: int):
    import httpx

    return httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30)
