"""Maintenance from repository indexes, against a cache populated by a real apt-get through a real proxy,
from a Debian repository the test builds and then changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from support.proxy import Proxy, wait_for
from support.debrepo import ARCH, AptClient, build_deb, write_indexes
from support.origin import Origin

pytestmark = pytest.mark.usefixtures("apt_tools")


def pkgcache(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkgcache", "--cache-dir", str(cache), *args], capture_output=True, text=True, timeout=300)


def cached_debs(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*.deb")}


class World:
    """A two-suite repository, a proxy, and an apt client that uses both suites through it."""

    def __init__(self, origin: Origin, proxy: Proxy, tmp: Path) -> None:
        self.origin, self.proxy, self.tmp = origin, proxy, tmp
        self.repo = origin.root / "debian"
        self.pool = {}
        for name, ver, dep in (("alpha", "1.0", ""), ("beta", "2.1", "alpha"), ("gamma", "0.3", "")):
            self.pool[name] = build_deb(self.repo, name, ver, 20_000, depends=dep)
        self.publish("stable", ["alpha", "beta", "gamma"])
        self.pool["delta"] = build_deb(self.repo, "delta", "1.0", 10_000)
        self.publish("oldstable", ["delta"])
        self.apt = AptClient(tmp / "apt", f"{origin.base}/debian", proxy=proxy.url)
        (self.apt.base / "etc" / "sources.list").write_text(
            f"deb [trusted=yes] {origin.base}/debian stable main\n"
            f"deb [trusted=yes] {origin.base}/debian oldstable main\n")
        self.cache = proxy.cache_dir

    def publish(self, suite: str, names: list[str]) -> None:
        """Indexes of a suite listing exactly these packages (apt-ftparchive scans a per-suite pool view)."""
        view = self.repo / f".view-{suite}"
        shutil.rmtree(view, ignore_errors=True)
        for n in names:
            deb = self.pool[n]
            dest = view / deb.relative_to(self.repo)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.hardlink_to(deb)
        (view / "dists").mkdir()
        if (self.repo / "dists" / suite).exists():
            shutil.move(str(self.repo / "dists" / suite), str(view / "dists" / suite))
        write_indexes(view, suite=suite, by_hash=True)
        shutil.rmtree(self.repo / "dists" / suite, ignore_errors=True)
        (self.repo / "dists").mkdir(exist_ok=True)
        shutil.move(str(view / "dists" / suite), str(self.repo / "dists" / suite))
        shutil.rmtree(view)

    def update_and_get(self, *pkgs: str) -> None:
        self.apt.run("update")
        if pkgs:
            self.apt.clean()
            self.apt.run("install", "--download-only", *pkgs)


@pytest.fixture
def world(origin: Origin, start_proxy, tmp_path: Path) -> World:
    w = World(origin, start_proxy(), tmp_path)
    w.update_and_get("beta", "gamma", "delta")
    assert cached_debs(w.cache) == {w.pool[n].name for n in ("alpha", "beta", "gamma", "delta")}
    return w


def test_expire_dry_run_grace_period_and_now(world: World) -> None:
    w = world
    old_alpha = w.pool["alpha"].name
    # an index under its by-hash name, as clients fetch them from archives that offer it
    import hashlib

    pk = (w.repo / "dists/stable/main" / f"binary-{ARCH}" / "Packages.xz").read_bytes()
    old_index = f"/debian/dists/stable/main/binary-{ARCH}/by-hash/SHA256/{hashlib.sha256(pk).hexdigest()}"
    with w.proxy.client() as c:
        assert c.get(w.origin.base + old_index).status_code == 200
    # the repository changes: alpha upgraded, gamma removed; clients refresh through the proxy
    w.pool["alpha"] = build_deb(w.repo, "alpha", "1.1", 20_000)
    w.publish("stable", ["alpha", "beta"])
    w.update_and_get("beta")
    r = pkgcache(w.cache, "expire", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "orphan " in r.stdout and old_alpha in r.stdout and "gamma_0.3_all.deb" in r.stdout
    assert "would delete" in pkgcache(w.cache, "expire", "--dry-run", "--now").stdout
    assert old_index.rsplit("/", 1)[1] in r.stdout  # the stale index the new Release no longer names
    assert "delta" not in r.stdout and "beta_2.1" not in r.stdout
    assert old_alpha in cached_debs(w.cache)  # dry run deletes nothing
    # first real run: orphans are listed with today's date, kept for the grace period
    r = pkgcache(w.cache, "expire")
    assert "0 deleted" in r.stdout
    orphans = json.loads((w.cache / ".pkgcache" / "orphans.json").read_text())["orphans"]
    assert any(k.endswith(old_alpha) for k in orphans)
    # the grace period runs out for alpha only
    for k in orphans:
        if k.endswith(old_alpha):
            orphans[k] = time.time() - 5 * 86400
    (w.cache / ".pkgcache" / "orphans.json").write_text(json.dumps({"orphans": orphans}))
    r = pkgcache(w.cache, "expire")
    assert "1 deleted" in r.stdout and old_alpha not in cached_debs(w.cache)
    assert "gamma_0.3_all.deb" in cached_debs(w.cache)
    # gamma is published again: referenced again, it leaves the orphan list
    w.publish("stable", ["alpha", "beta", "gamma"])
    w.update_and_get()
    pkgcache(w.cache, "expire")
    orphans = json.loads((w.cache / ".pkgcache" / "orphans.json").read_text())["orphans"]
    assert not any("gamma" in k for k in orphans)
    # --now skips the grace period
    w.publish("stable", ["alpha", "beta"])
    w.update_and_get()
    r = pkgcache(w.cache, "expire", "--now")
    assert "gamma_0.3_all.deb" not in cached_debs(w.cache)
    assert {w.pool["beta"].name, w.pool["delta"].name} <= cached_debs(w.cache)


def test_releases_list_and_remove_then_expire_collects(world: World) -> None:
    r = pkgcache(world.cache, "releases")
    assert r.returncode == 0
    assert ":stable" in r.stdout and ":oldstable" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.split()[0].endswith(":oldstable"))
    assert "1 packages" in " ".join(line.split())
    r = pkgcache(world.cache, "releases", "remove", "oldstable")
    assert r.returncode == 0 and "removed" in r.stdout
    assert ":oldstable" not in pkgcache(world.cache, "releases").stdout
    r = pkgcache(world.cache, "expire", "--now")
    assert world.pool["delta"].name not in cached_debs(world.cache)
    assert world.pool["beta"].name in cached_debs(world.cache)


def test_verify_finds_and_fixes_damage(world: World) -> None:
    beta = next(world.cache.rglob(world.pool["beta"].name))
    data = bytearray(beta.read_bytes())
    data[100] ^= 0xFF
    beta.write_bytes(bytes(data))
    r = pkgcache(world.cache, "verify")
    assert r.returncode == 1
    assert "DAMAGED" in r.stdout and world.pool["beta"].name in r.stdout
    assert f"/binary-{ARCH}/" in r.stdout  # checked against the index that lists it (by-hash, as apt got it)
    r = pkgcache(world.cache, "verify", "--fix=delete")
    assert r.returncode == 0 and not beta.exists()
    assert pkgcache(world.cache, "verify").returncode == 0
    # the next client request downloads it again
    world.update_and_get("beta")
    assert beta.read_bytes() == world.pool["beta"].read_bytes()


def test_import_places_matching_debs_and_leaves_the_rest(world: World, tmp_path: Path) -> None:
    beta_key_file = next(world.cache.rglob(world.pool["beta"].name))
    assert pkgcache(world.cache, "verify", "--fix=delete").returncode == 0
    beta_key_file.unlink()  # as if never cached
    subprocess.run(["pkgcache", "--cache-dir", str(world.cache), "expire", "--now"], capture_output=True)
    old = tmp_path / "old-archives"
    old.mkdir()
    shutil.copy(world.pool["beta"], old)
    (old / "unrelated_1.0_all.deb").write_bytes(b"not in any index")
    before = world.origin.count(f"/debian/{world.pool['beta'].relative_to(world.repo)}")
    r = pkgcache(world.cache, "import", str(old))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 placed" in r.stdout and "unrelated_1.0_all.deb" in r.stdout
    assert (old / world.pool["beta"].name).exists()  # copied, not moved
    world.apt.clean()
    world.apt.run("install", "--download-only", "beta")
    assert world.origin.count(f"/debian/{world.pool['beta'].relative_to(world.repo)}") == before


def test_precache_downloads_what_an_index_lists(origin: Origin, start_proxy, tmp_path: Path) -> None:
    w = World(origin, start_proxy(), tmp_path)
    w.update_and_get()  # indexes only, fetched by apt by-hash
    assert cached_debs(w.cache) == set()
    assert list(w.cache.rglob("by-hash/SHA256/*")) and not list(w.cache.rglob("binary-*/Packages*"))
    select = ("--suite", "stable", "--component", "main", "--arch", ARCH)
    r = pkgcache(w.cache, "precache", "--estimate", "--proxy", w.proxy.url, *select)
    assert r.returncode == 0 and "list 3 files to fetch" in r.stdout, r.stdout + r.stderr
    assert cached_debs(w.cache) == set()
    r = pkgcache(w.cache, "precache", "--proxy", w.proxy.url, *select)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cached_debs(w.cache) == {w.pool[n].name for n in ("alpha", "beta", "gamma")}
    assert "3 files" in r.stdout and "0 failed" in r.stdout and "ok: " not in r.stderr  # a summary, no per-file lines
    # the documented pattern matches the index's name although apt fetched it by-hash
    r = pkgcache(w.cache, "precache", "--estimate", "--proxy", w.proxy.url, "*/dists/*/main/binary-*/Packages*")
    assert "list 1 files to fetch" in r.stdout and "3 already cached" in r.stdout  # delta, from oldstable


def test_precache_with_the_proxy_down_says_so_once(origin: Origin, start_proxy, tmp_path: Path) -> None:
    w = World(origin, start_proxy(), tmp_path)
    w.update_and_get()
    url = w.proxy.url
    w.proxy.stop()
    r = pkgcache(w.cache, "precache", "--proxy", url, "--suite", "stable")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot start, the proxy does not answer" in r.stderr, r.stderr


def test_pinned_files_outlive_expire(world: World) -> None:
    w = world
    w.pool["epsilon"] = build_deb(w.repo, "epsilon", "1.0", 5_000)
    w.publish("oldstable", ["epsilon"])  # delta is listed nowhere now
    w.update_and_get()
    r = pkgcache(w.cache, "pin", "*/pool/main/d/delta/*")
    assert r.returncode == 0 and "*/pool/main/d/delta/*" in r.stdout
    r = pkgcache(w.cache, "expire", "--now")
    assert r.returncode == 0, r.stdout
    assert w.pool["delta"].name in cached_debs(w.cache)
    r = pkgcache(w.cache, "pin", "--remove", "*/nothing/*")
    assert r.returncode == 1 and "not pinned" in r.stderr
    pkgcache(w.cache, "pin", "--remove", "*/pool/main/d/delta/*")
    pkgcache(w.cache, "expire", "--now")
    assert w.pool["delta"].name not in cached_debs(w.cache)


def test_failed_index_parse_deletes_nothing(world: World) -> None:
    w = world
    w.pool["alpha"] = build_deb(w.repo, "alpha", "1.1", 20_000)
    w.publish("stable", ["alpha", "beta"])
    w.update_and_get("beta")
    before = cached_debs(w.cache)
    # damage the cached Release of stable so it no longer parses as one
    rel = next(p for p in w.cache.rglob("InRelease") if "/stable/" in str(p))
    rel.write_bytes(b"\x00\x01garbage that is not a Release file\n")
    r = pkgcache(w.cache, "expire", "--now")
    assert r.returncode == 1
    assert "REFUSED" in r.stdout and "nothing under it is deleted" in r.stdout
    assert cached_debs(w.cache) == before


def test_republished_package_is_dropped_before_it_is_served(world: World) -> None:
    w = world
    gamma_path = f"/debian/{w.pool['gamma'].relative_to(w.repo)}"
    w.pool["gamma"] = build_deb(w.repo, "gamma", "0.3", 30_000)  # same name and version, other bytes
    w.publish("stable", ["alpha", "beta", "gamma"])
    w.apt.run("update")
    wait_for(lambda: "dropped stale copy" in w.proxy.log_text(), what="the stale copy to be dropped")
    w.apt.clean()
    w.apt.run("install", "--download-only", "gamma")
    got = next(p for p in w.apt.archives() if p.name.startswith("gamma"))
    assert got.read_bytes() == w.pool["gamma"].read_bytes()
    assert w.origin.count(gamma_path) == 2


def test_report_page_shows_maintenance_and_runs_actions(world: World, start_proxy, tmp_path: Path) -> None:
    import base64
    import re

    proxy = start_proxy("--set", "pkgcache_admin_password=pw", cache_dir=world.cache)
    pkgcache(world.cache, "verify")
    with proxy.client() as c:
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
        page = c.get("http://pkgcache/admin", headers=auth).text
        assert "Cache size" in page and "Verify" in page and "Orphans" in page and "Damaged" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = c.post("http://pkgcache/admin/verify", data={"csrf": csrf}, headers=auth)
        assert r.status_code == 200 and "damaged" in r.text
        r = c.post("http://pkgcache/admin/expire", data={"csrf": csrf}, headers=auth)
        assert r.status_code == 200 and "expire:" in r.text
        stats = c.get("http://pkgcache/stats.json").json()
    commands = [run["command"] for run in stats["maintenance"]["runs"]]
    assert commands.count("verify") >= 2 and "expire" in commands
    assert stats["maintenance"]["size"]["files"] > 4
