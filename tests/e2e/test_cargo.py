"""cargo, the real client, through pkgcache with a sparse registry the test builds: cold, warm, offline in auto
and on with the origin gone, and a crate wanted offline, fetched and imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from support.cargoreg import registry
from support.origin import Origin
from support.proxy import Proxy, wait_for
from support.recipes import block
from support.rpmpac import exports


def _project(where: Path, origin: Origin, crate: str) -> Path:
    """A project depending on crate from the registry the recipe's block names, as written."""
    (where / "src").mkdir(parents=True)
    (where / ".cargo").mkdir()
    (where / ".cargo/config.toml").write_text(block("cargo.md", 1, mirror=f"127.0.0.1:{origin.port}"))
    (where / "Cargo.toml").write_text(f'[package]\nname = "proj"\nversion = "0.1.0"\nedition = "2021"\n'
                                      f'[dependencies]\n{crate} = {{ version = "0.1", registry = "mirror" }}\n')
    (where / "src/lib.rs").write_text("")
    return where


def cargo_fetch(proxy: Proxy, project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """cargo fetch with the proxy the recipe's export line names and an empty CARGO_HOME (no client cache)."""
    cargo = shutil.which("cargo")
    assert cargo, "cargo is not installed"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(exports(block("cargo.md", 0, proxy.url.removeprefix("http://"))))
    env["CARGO_HOME"] = str(home)
    (project / "Cargo.lock").unlink(missing_ok=True)
    return subprocess.run([cargo, "fetch"], cwd=project, capture_output=True, text=True, timeout=180, env=env)


def _wanted(ds: Path) -> list[str]:
    try:
        return [w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]]
    except FileNotFoundError:
        return []


def test_cargo_cold_warm_offline_and_wanted(origin: Origin, start_proxy, tmp_path: Path) -> None:
    for path, body in registry(origin.base, {"dem": "0.1.0", "extra": "0.1.4"}).items():
        origin.put(path, body)
    project = _project(tmp_path / "proj", origin, "dem")
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    for run in ("cold", "warm"):
        r = cargo_fetch(proxy, project, tmp_path / f"home-{run}")
        assert r.returncode == 0, (run, r.stdout + r.stderr)
    assert origin.count("/crates/dem-0.1.0.crate") == 1  # a crate goes upstream once
    assert origin.count("/index/3/d/dem") == 2  # the index file is revalidated
    with proxy.client(headers={"Accept": "text/plain"}) as c:
        assert c.get(f"{origin.base}/index/3/d/dem").headers["x-cache"] in ("HIT", "REVALIDATED")
        assert c.get(f"{origin.base}/crates/dem-0.1.0.crate").headers["x-cache"] == "HIT"
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):  # the registry is gone
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        r = cargo_fetch(p, project, tmp_path / f"home-offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-2000:])
        p.stop()
    # a crate nobody fetched: wanted offline, fetched on a connected machine, imported; until cargo can build
    ds = tmp_path / "ds"
    ds.mkdir()
    p = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}", cache_dir=cache)
    other = _project(tmp_path / "other", origin, "extra")
    trips = 0
    while (r := cargo_fetch(p, other, tmp_path / f"home-trip-{trips}")).returncode != 0:
        assert trips < 2, r.stdout + r.stderr  # its index file, then its .crate
        wait_for(lambda: _wanted(ds) != [], what="the wanted list naming what cargo missed")
        origin.restart()
        f = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
        assert f.returncode == 0, f.stdout + f.stderr
        origin.stop()
        wait_for(lambda: _wanted(ds) == [], timeout=30, what="the import of the fetched files")
        trips += 1
    assert trips >= 1 and origin.count("/crates/extra-0.1.4.crate") == 1
