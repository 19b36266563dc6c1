"""cargo, the real client, through pkgcache with a sparse registry the test builds: cold, warm, offline in auto
and on with the origin gone, a .crate its index lists with another cksum never stored, and a crate (with what
it depends on) wanted offline, fetched and imported in one trip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from support.cargoreg import registry
from support.origin import Origin
from support.proxy import Proxy, one_trip, wait_for
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


def test_cargo_cold_warm_offline_and_wanted(origin: Origin, start_proxy, tmp_path: Path) -> None:
    crates = {"dem": "0.1.0", "extra": "0.1.4", "extradep": "0.1.2", "liar": "0.1.0"}
    for path, body in registry(origin.base, crates, deps={"extra": ["extradep"]}, lie={"liar"}).items():
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
        c.get(f"{origin.base}/index/li/ar/liar")
        wait_for(lambda: "index/li/ar/liar: what it lists is recorded" in proxy.log_text(),
                 what="the record of what liar's index file lists")
        for _ in range(2):  # passed on as it came, never stored
            assert c.get(f"{origin.base}/crates/liar-0.1.0.crate").headers["x-cache"] == "MISS"
    assert origin.count("/crates/liar-0.1.0.crate") == 2
    assert "SHA-256 mismatch" in proxy.log_text()
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):  # the registry is gone
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        r = cargo_fetch(p, project, tmp_path / f"home-offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-2000:])
        p.stop()
    # a crate nobody fetched: wanted offline, fetched with what it depends on, imported; cargo then works
    ds = tmp_path / "ds"
    ds.mkdir()
    p = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}", cache_dir=cache)
    other = _project(tmp_path / "other", origin, "extra")
    trips = one_trip(ds, origin, lambda n: cargo_fetch(p, other, tmp_path / f"home-trip-{n}"), "cargo")
    assert trips == 1 and origin.count("/crates/extra-0.1.4.crate") == 1
    assert origin.count("/crates/extradep-0.1.2.crate") == 1 and origin.count("/crates/extra-0.0.1.crate") == 0
