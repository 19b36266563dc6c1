"""Maven, the real client (3.8), through pkgcache as settings.xml's proxy, with a Maven 2 layout repository the
test builds: cold, warm, offline in auto and on with the origin gone, an artifact its .sha1 disowns never kept,
and a project's artifacts wanted offline, fetched with their dependencies in one trip, and imported.

Maven resolves a project's build extension and its dependencies in its core, before any plugin: `mvn validate`
of such a project downloads through the repository alone (a plugin such as dependency:go-offline would first
have to come from Maven Central)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from support.mavenrepo import artifact, directory, file_version, project_pom
from support.origin import Origin
from support.proxy import Proxy, one_trip, wait_for
from support.recipes import block

G = "org.example"
PLEXUS = ("org.codehaus.plexus", "plexus-utils", "1.1")  # what Maven adds to an extension that lacks it
EXT, LIB, SNAP = (G, "demo-ext", "1.0"), (G, "demo-lib", "1.0"), (G, "snap", "1.1-SNAPSHOT")
OTHER, OTHER_LIB, OTHER_SNAP = (G, "other-ext", "2.0"), (G, "other-lib", "2.0"), (G, "other-snap", "2.1-SNAPSHOT")


def _publish(origin: Origin) -> None:
    files = {**artifact(*EXT, deps=[LIB, SNAP, PLEXUS]), **artifact(*LIB), **artifact(*SNAP), **artifact(*PLEXUS),
             **artifact(*OTHER, deps=[OTHER_LIB, OTHER_SNAP, PLEXUS]), **artifact(*OTHER_LIB), **artifact(*OTHER_SNAP)}
    for path, body in files.items():
        origin.put(f"maven2/{path}", body)


def _jar(c: tuple[str, str, str]) -> str:
    return f"/maven2/{directory(*c)}/{c[1]}-{file_version(c[2])}.jar"


def mvn_validate(proxy: Proxy, origin: Origin, project: Path, ext: tuple[str, str, str], local: Path
                 ) -> subprocess.CompletedProcess[str]:
    """mvn with the recipe's settings.xml as written and an empty local repository (no client cache)."""
    mvn = shutil.which("mvn")
    assert mvn, "maven is not installed"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pom.xml").write_text(project_pom(ext))
    settings = (block("maven.md", 0, mirror=f"127.0.0.1:{origin.port}")
                .replace("<host>PROXY-HOST</host>", "<host>127.0.0.1</host>")
                .replace("<port>8080</port>", f"<port>{proxy.port}</port>"))
    (project / "settings.xml").write_text(settings)
    return subprocess.run([mvn, "-B", "-s", "settings.xml", f"-Dmaven.repo.local={local}", "validate"],
                          cwd=project, capture_output=True, text=True, timeout=300)


def test_maven_cold_warm_offline_and_one_trip(origin: Origin, start_proxy, tmp_path: Path) -> None:
    _publish(origin)
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    for run in ("cold", "warm"):
        r = mvn_validate(proxy, origin, tmp_path / "proj", EXT, tmp_path / f"m2-{run}")
        assert r.returncode == 0, (run, r.stdout[-3000:])
        assert (tmp_path / f"m2-{run}" / directory(*LIB) / "demo-lib-1.0.jar").is_file()
    assert origin.count(_jar(LIB)) == 1 and origin.count(_jar(EXT)) == 1  # released: upstream once
    assert origin.count(f"/maven2/{directory(*SNAP)}/maven-metadata.xml") == 2  # a SNAPSHOT's metadata: asked again
    with proxy.client() as c:
        assert c.get(origin.base + _jar(LIB)).headers["x-cache"] == "HIT"
        assert c.get(origin.base + _jar(SNAP)).headers["x-cache"] in ("REVALIDATED", "MISS")
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):  # the repository is gone
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        r = mvn_validate(p, origin, tmp_path / "proj", EXT, tmp_path / f"m2-offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout[-3000:], p.log_text()[-2000:])
        p.stop()
    # an extension nobody fetched: wanted offline, fetched with its dependencies, imported; then Maven works
    ds = tmp_path / "ds"
    ds.mkdir()
    p = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}", cache_dir=cache)
    trips = one_trip(ds, origin, lambda n: mvn_validate(p, origin, tmp_path / "other", OTHER, tmp_path / f"m2-trip-{n}"),
                     "Maven")
    assert trips == 1 and origin.count(_jar(OTHER_LIB)) == 1 and origin.count(_jar(OTHER_SNAP)) == 1
    assert origin.count("/maven2/org/example/only-in-tests/9/only-in-tests-9.pom") == 0  # test scope: not fetched


def test_maven_artifact_its_sha1_disowns_is_not_kept(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """A jar whose .sha1 (fetched after it, as Maven does) names other bytes is dropped from the cache; one
    whose cached .sha1 disagrees is never stored."""
    files = artifact(*LIB)
    jar = f"{directory(*LIB)}/demo-lib-1.0.jar"
    files[jar + ".sha1"] = b"0" * 40 + b"  demo-lib-1.0.jar\n"
    for path, body in files.items():
        origin.put(f"maven2/{path}", body)
    proxy = start_proxy(cache_dir=tmp_path / "cache")
    url = f"{origin.base}/maven2/{jar}"
    with proxy.client() as c:
        assert c.get(url).headers["x-cache"] == "MISS"
        assert c.get(url).headers["x-cache"] == "HIT"  # nothing says otherwise yet
        c.get(url + ".sha1")
        wait_for(lambda: "demo-lib-1.0.jar.sha1: what it lists is recorded" in proxy.log_text(),
                 what="the check of what the .sha1 vouches for")
        assert "dropped stale copy" in proxy.log_text()
        for _ in range(2):
            assert c.get(url).headers["x-cache"] == "MISS"
    assert origin.count(f"/maven2/{jar}") == 3
    assert "SHA-1 mismatch" in proxy.log_text()
