"""apk, the real client (apk-tools 3), through pkgcache: a v2 repository as Alpine 3.x mirrors publish it and a
v3 one, cold, warm, offline in auto and on with the origin gone, and a miss wanted, fetched and imported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.apkrepo import ARCH, Package, apk_add, v2_package, v2_repository, v3_package, v3_repository
from support.origin import Origin
from support.proxy import wait_for, wanted_urls
from support.recipes import block

DEMO = Package("demo", "1.0-r0", {"usr/share/demo/README": b"demo from the test's mirror\n"})
EXTRA = Package("extra", "2.1-r3", {"usr/share/extra/data": b"x" * 50_000})


def _publish(origin: Origin, fmt: str, tmp_path: Path) -> str:
    """The repository line of recipes/alpine.md, as written, served by origin in format fmt."""
    repository = block("alpine.md", 1, mirror=f"127.0.0.1:{origin.port}").strip()
    files = v2_repository([DEMO, EXTRA]) if fmt == "v2" else v3_repository([DEMO, EXTRA], tmp_path / "v3build")
    base = repository.removeprefix(origin.base)
    for name, body in files.items():
        origin.put(f"{base}/{ARCH}/{name}", body)
    return repository


@pytest.mark.parametrize("fmt", ["v2", "v3"])
def test_apk_cold_warm_offline_and_one_trip(fmt: str, origin: Origin, start_proxy, tmp_path: Path) -> None:
    repository = _publish(origin, fmt, tmp_path)
    index, demo = f"{repository}/{ARCH}/APKINDEX.tar.gz", f"{repository}/{ARCH}/{DEMO.filename}"
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    for run in ("cold", "warm"):
        r = apk_add(proxy, repository, tmp_path / run, "demo")
        assert r.returncode == 0, (run, r.stdout + r.stderr)
        assert (tmp_path / run / "usr/share/demo/README").read_bytes() == DEMO.files["usr/share/demo/README"]
    assert origin.count(demo.removeprefix(origin.base)) == 1  # a package file goes upstream once
    with proxy.client() as c:
        assert c.get(demo).headers["x-cache"] == "HIT"
        assert c.get(index).headers["x-cache"] in ("HIT", "REVALIDATED")
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):  # the origin is gone
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        r = apk_add(p, repository, tmp_path / f"offline-{mode}", "demo")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-2000:])
        p.stop()
    # a package nobody fetched yet: wanted offline, fetched on a connected machine, imported, installed
    ds = tmp_path / "ds"
    ds.mkdir()
    p = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}", cache_dir=cache)
    extra = f"{repository}/{ARCH}/{EXTRA.filename}"
    assert apk_add(p, repository, tmp_path / "wanting", "extra").returncode != 0
    wait_for(lambda: extra in wanted_urls(ds), what="the wanted list naming the missing package")
    origin.restart()
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: extra not in wanted_urls(ds), timeout=30, what="the import of the fetched package")
    origin.stop()
    r = apk_add(p, repository, tmp_path / "after-import", "extra")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "after-import/usr/share/extra/data").read_bytes() == EXTRA.files["usr/share/extra/data"]


@pytest.mark.parametrize("fmt", ["v2", "v3"])
def test_apk_package_unlike_its_index_is_never_stored(fmt: str, origin: Origin, start_proxy, tmp_path: Path) -> None:
    """A package whose control segment (v2: the APKINDEX's C:) or identity (v3: its database block's SHA-256)
    is not the one the index names, republished under the same name or planted, is passed on as it came and
    never stored; apk itself then refuses it."""
    repository = _publish(origin, fmt, tmp_path)

    def build(readme: bytes) -> bytes:
        p = Package(DEMO.name, DEMO.version, {"usr/share/demo/README": readme})
        return v2_package(p)[0] if fmt == "v2" else v3_package(p, tmp_path / "planted")

    size = len(build(DEMO.files["usr/share/demo/README"]))
    planted = next(apk for i in range(1000)  # other bytes of the same size: only the checksum tells them apart
                   if len(apk := build(b"%04d from the test's mirror\n" % i)) == size)
    base = repository.removeprefix(origin.base)
    origin.put(f"{base}/{ARCH}/{DEMO.filename}", planted)  # the index still names the old one
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    index, demo = f"{repository}/{ARCH}/APKINDEX.tar.gz", f"{repository}/{ARCH}/{DEMO.filename}"
    with proxy.client() as c:
        assert c.get(index).status_code == 200
        wait_for(lambda: "APKINDEX.tar.gz: what it lists is recorded" in proxy.log_text(),
                 what="the record of what the APKINDEX lists")
        for _ in range(2):
            assert c.get(demo).headers["x-cache"] == "MISS"
    assert origin.count(demo.removeprefix(origin.base)) == 2
    said = "control checksum mismatch" if fmt == "v2" else "package identity mismatch"
    wait_for(lambda: said in proxy.log_text(), what="the mismatch in the log")  # the log trails the answer
    assert apk_add(proxy, repository, tmp_path / "root", "demo").returncode != 0
