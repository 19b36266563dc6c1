"""Offline in one trip, with real parts: a fresh offline apt client states what it wants with apt and curl only,
one `pkgcache fetch` on the "connected machine" brings indexes and the dependency closure (resolved by apt),
and back offline `apt-get update` and `apt-get install` both succeed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from support.debrepo import ARCH, AptClient, build_deb, write_indexes
from support.onetrip import state_wants, wanted_doc
from support.origin import Origin
from support.proxy import wait_for

pytestmark = pytest.mark.usefixtures("apt_tools")

INSTALLED = """Package: oldlib
Status: install ok installed
Priority: optional
Section: misc
Maintainer: Test <test@example.invalid>
Architecture: all
Version: 1.0
Description: test package oldlib
"""


def build_repo(repo: Path) -> dict[str, Path]:
    """hello needs: a Pre-Depends, an alternative whose first choice is ruled out by its version constraint, a
    virtual package, and oldlib, which the client already has.  contrib, a second architecture and the
    translations exist but the client does not use them."""
    debs = {
        "hello": build_deb(repo, "hello", "1.0", 40_000, depends="libgreet (<< 1.2) | greet-compat, "
                           "mail-transport-agent, oldlib (>= 1.0)", fields={"Pre-Depends": "libbase"}),
        "libbase": build_deb(repo, "libbase", "2.0", 10_000),
        "libgreet": build_deb(repo, "libgreet", "1.3", 10_000),
        "greet-compat": build_deb(repo, "greet-compat", "1.0", 10_000),
        "tinymta": build_deb(repo, "tinymta", "0.9", 10_000, fields={"Provides": "mail-transport-agent"}),
        "oldlib": build_deb(repo, "oldlib", "1.0", 10_000),
        "unrelated": build_deb(repo, "unrelated", "1.0", 10_000),
        "extra": build_deb(repo, "extra", "1.0", 10_000, component="contrib"),
    }
    write_indexes(repo, by_hash=True, components=("main", "contrib"), archs=(ARCH, "arm64" if ARCH != "arm64"
                                                                            else "amd64"), translations=True)
    return debs


def installed_root(apt: AptClient, status: str) -> list[str]:
    """A root folder dpkg really installs into, whose dpkg status says what is installed; the apt options that
    use it (they come after the client's own, so they win)."""
    root = apt.base / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(status)
    return ["-o", f"Dir::State::status={root}/var/lib/dpkg/status", "-o", f"DPkg::Options::=--root={root}",
            "-o", "DPkg::Options::=--force-script-chrootless", "-o", "DPkg::Options::=--force-not-root"]


@pytest.mark.parametrize("skew", [False, True], ids=["mirror-in-step", "by-hash-missing-upstream"])
def test_fresh_offline_machine_installs_after_one_fetch(origin: Origin, start_proxy, tmp_path: Path,
                                                         skew: bool) -> None:
    """skew: the mirror's Release names by-hash objects it answers 404 for (a CDN's lasting skew between its
    Release and its by-hash tree): fetch falls back to the plain names, as apt does, checks them against the
    Release digest, files them under both names and says so."""
    repo = origin.root / "debian"
    debs = build_repo(repo)
    if skew:
        for d in list((repo / "dists").rglob("by-hash")):
            shutil.rmtree(d)
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}")  # offline=auto: upstream is simply not there
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url)
    real = installed_root(apt, INSTALLED)  # dpkg installs for real, into a root of its own
    origin.stop()

    # offline: a fresh client (no lists) fails to update, then says once what it wants
    assert apt.run("update", *real, check=False).returncode != 0
    r = state_wants(apt, proxy, "hello", apt.base / "root/var/lib/dpkg/status")
    assert r.returncode == 0 and "recorded request" in r.stdout and "safe to remove" in r.stdout, r.stdout + r.stderr
    stated = wanted_doc(ds)["requests"]  # on the stick as soon as curl returns
    assert len(stated) == 1 and stated[0]["packages"] == ["hello"] and stated[0]["archs"] == [ARCH]
    assert stated[0]["sources"] == [{"repo": f"{origin.base}/debian/", "suite": "stable", "components": ["main"],
                                     "archs": [ARCH, "all"]}]
    assert (ds / "status" / stated[0]["status"]).read_text() == INSTALLED

    # the one trip: the only time upstream is there
    trips = 0
    origin.restart()
    try:
        r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
        trips += 1
    finally:
        origin.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NOT RESOLVED" not in r.stdout
    assert ("by-hash object missing upstream" in r.stdout) is skew, r.stdout
    manifest = json.loads((ds / "manifest.json").read_text())
    fetched = set(manifest["files"])
    names = {u.rsplit("/", 1)[-1] for u in fetched if u.endswith(".deb")}
    assert names == {debs[n].name for n in ("hello", "libbase", "greet-compat", "tinymta")}
    # only what the client uses: main for its architecture, no contrib, no other arch, no translations
    index_dirs = {u.split("/dists/stable/", 1)[1].rsplit("/by-hash/", 1)[0] for u in fetched if "/by-hash/" in u}
    assert index_dirs == {f"main/binary-{ARCH}"}, index_dirs
    # the names the client guessed before it had a Release (every compression) are not brought: its target
    # says which one it reads; a plain name is here only as the fallback of a missing by-hash object
    plain = {u for u in fetched if "/binary-" in u and "/by-hash/" not in u}
    assert plain == ({f"{origin.base}/debian/dists/stable/main/binary-{ARCH}/Packages.xz"} if skew else set()), plain

    # back offline: the proxy imports, and the request leaves the list
    wait_for(lambda: not wanted_doc(ds).get("requests") and not wanted_doc(ds).get("wanted"), timeout=30,
             what="the import of the trip")
    r = apt.run("update", *real)
    assert "Err" not in r.stdout, r.stdout
    r = apt.run("install", *real, "hello")
    got = {p.name for p in apt.archives()}
    assert got == {debs[n].name for n in ("hello", "libbase", "greet-compat", "tinymta")}
    assert all((apt.base / "cache" / "archives" / debs[n].name).read_bytes() == debs[n].read_bytes()
               for n in ("hello", "libbase", "greet-compat", "tinymta"))
    assert wanted_doc(ds).get("wanted") == [], "nothing was missing on the second offline run"
    assert trips == 1
    # dpkg installed them: their files are in the root, and its status says so
    assert (apt.base / "root/usr/share/hello/data").is_file() and "Setting up hello (1.0)" in r.stdout
    status = (apt.base / "root/var/lib/dpkg/status").read_text()
    assert all(f"Package: {n}\nStatus: install ok installed" in status
               for n in ("hello", "libbase", "greet-compat", "tinymta", "oldlib"))


def test_unresolvable_packages_are_named_and_the_rest_still_comes(origin: Origin, start_proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    build_repo(repo)
    build_deb(repo, "broken", "1.0", 1_000, depends="no-such-thing")
    write_indexes(repo, by_hash=True)
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url)
    r = state_wants(apt, proxy, "libbase broken nosuchpackage")
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NOT RESOLVED: 2" in r.stdout
    assert "nosuchpackage: E: Unable to locate package nosuchpackage" in r.stdout
    assert "broken:" in r.stdout and "no-such-thing" in r.stdout
    manifest = json.loads((ds / "manifest.json").read_text())
    assert [u.rsplit("/", 1)[-1] for u in manifest["files"] if u.endswith(".deb")] == ["libbase_2.0_all.deb"]
    # the request stays on the list with apt's reasons, shown on the page
    wait_for(lambda: wanted_doc(ds).get("requests", [{}])[0].get("unresolved"), timeout=30, what="the outcome")
    page = httpx.get(f"{proxy.url}/want", trust_env=False).text
    assert "Unable to locate package nosuchpackage" in page


def test_pkgcache_want_reads_the_local_apt_and_dpkg(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """`pkgcache want` on an offline machine that has pkgcache: apt's own configuration says targets and status."""
    repo = origin.root / "debian"
    build_repo(repo)
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url)
    (apt.base / "state" / "status").write_text(INSTALLED)
    conf = tmp_path / "apt.conf"
    opts = apt.options()
    conf.write_text("".join(f'{o.split("=", 1)[0]} "{o.split("=", 1)[1]}";\n' for o in opts[1::2]))
    r = subprocess.run(["pkgcache", "want", "--proxy", proxy.url, "hello", "tinymta"], capture_output=True,
                       text=True, timeout=60, env={"PATH": subprocess.os.environ["PATH"], "APT_CONFIG": str(conf)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "recorded request" in r.stdout
    (stated,) = wanted_doc(ds)["requests"]
    assert stated["packages"] == ["hello", "tinymta"] and stated["archs"] == [ARCH]
    assert stated["sources"][0]["suite"] == "stable"
    assert (ds / "status" / stated["status"]).read_text() == INSTALLED
    r = subprocess.run(["pkgcache", "want", "--proxy", proxy.url, "../../etc/passwd"], capture_output=True,
                       text=True, timeout=60, env={"PATH": subprocess.os.environ["PATH"], "APT_CONFIG": str(conf)})
    assert r.returncode == 2 and "not a Debian package name" in r.stderr


def test_without_targets_the_sources_seen_in_requests_are_used(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """A client that only ran `apt-get update` through the proxy, then states names and its architecture: its
    requests told the suite, the component and the architectures, so fetch brings only those."""
    repo = origin.root / "debian"
    debs = build_repo(repo)
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url)
    assert apt.run("update", check=False).returncode != 0
    r = subprocess.run(["curl", "-sS", "-x", proxy.url, "http://pkgcache/want", "-F", "packages=tinymta",
                        "-F", f"arch={ARCH}"], capture_output=True, text=True, timeout=60)
    assert "recorded request" in r.stdout, r.stdout + r.stderr
    (stated,) = wanted_doc(ds)["requests"]
    (source,) = stated["sources"]  # apt asks in parallel: the order of what was seen may vary
    assert (source["repo"], source["suite"], source["components"], set(source["archs"])) == (
        f"{origin.base}/debian/", "stable", ["main"], {ARCH, "all"})
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "components main as the clients used them" in r.stdout
    fetched = json.loads((ds / "manifest.json").read_text())["files"]
    assert {u.split("/dists/stable/", 1)[1].rsplit("/by-hash/", 1)[0] for u in fetched if "/by-hash/" in u} == {
        f"main/binary-{ARCH}"}
    wait_for(lambda: not wanted_doc(ds).get("requests"), timeout=30, what="the import of the trip")
    apt.run("update")
    apt.run("install", "--download-only", "tinymta")
    assert [p.name for p in apt.archives()] == [debs["tinymta"].name]


FOREIGN = "i386" if ARCH != "i386" else "amd64"


def test_multi_arch_is_resolved_as_the_client_will(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """A client with a foreign architecture wants a foreign package: a Multi-Arch: same library comes in the
    foreign architecture, a Multi-Arch: foreign tool in the native one."""
    repo = origin.root / "debian"
    debs = {
        "app": build_deb(repo, "app", "1.0", 5_000, depends="libx, helper", arch=FOREIGN),
        "libx-native": build_deb(repo, "libx", "1.0", 5_000, fields={"Multi-Arch": "same"}, arch=ARCH),
        "libx-foreign": build_deb(repo, "libx", "1.0", 5_000, fields={"Multi-Arch": "same"}, arch=FOREIGN),
        "helper": build_deb(repo, "helper", "1.0", 5_000, fields={"Multi-Arch": "foreign"}, arch=ARCH),
    }
    write_indexes(repo, by_hash=True, archs=(ARCH, FOREIGN))
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url, foreign=(FOREIGN,))
    r = state_wants(apt, proxy, f"app:{FOREIGN}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert wanted_doc(ds)["requests"][0]["archs"] == [ARCH, FOREIGN]
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = {debs[n].name for n in ("app", "libx-foreign", "helper")}
    fetched = json.loads((ds / "manifest.json").read_text())["files"]
    assert {u.rsplit("/", 1)[-1] for u in fetched if u.endswith(".deb")} == expected
    wait_for(lambda: not wanted_doc(ds).get("requests"), timeout=30, what="the import of the trip")
    apt.run("update")
    apt.run("install", "--download-only", f"app:{FOREIGN}")
    assert {p.name for p in apt.archives()} == expected


def test_a_tampered_datastore_is_reported_and_nothing_else_is_lost(origin: Origin, tmp_path: Path) -> None:
    """The datastore is as untrusted as the client: a forged request is ignored with its reason, a status that
    does not match its digest is not used (and said so), and the honest request is still served."""
    from pkgcache_suite.stick.datastore import Datastore

    repo = origin.root / "debian"
    debs = build_repo(repo)
    ds, _ = Datastore.open(tmp_path / "stick")
    source = {"repo": f"{origin.base}/debian/", "suite": "stable", "components": ["main"], "archs": [ARCH]}
    honest = {"id": "x", "packages": ["hello"], "archs": [ARCH], "sources": [source], "targets": [],
              "status": "ab" * 32, "recommends": True, "client": "10.0.0.5", "when": 1.0}
    (ds.root / "status").mkdir()
    (ds.root / "status" / ("ab" * 32)).write_text(INSTALLED + "\n")  # not what its name says
    forged = {**honest, "sources": [{**source, "suite": "stable main] [trusted=yes"}]}
    ds.write_wanted([], {}, [honest, forged])
    r = subprocess.run(["pkgcache", "fetch", str(ds.root)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr  # the status problem is reported as not resolved
    assert "ignored a stated request: bad recorded request: targets: not a suite name" in r.stdout, r.stdout
    assert "does not match its digest" in r.stdout
    fetched = json.loads((ds.root / "manifest.json").read_text())["files"]
    # resolved as for a machine with nothing installed: oldlib comes too
    assert {u.rsplit("/", 1)[-1] for u in fetched if u.endswith(".deb")} == {
        debs[n].name for n in ("hello", "libbase", "greet-compat", "tinymta", "oldlib")}


def test_a_suite_without_inrelease_is_read_from_release(origin: Origin, start_proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    debs = build_repo(repo)
    (repo / "dists" / "stable" / "InRelease").unlink()
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    apt = AptClient(tmp_path / "client", f"{origin.base}/debian", proxy=proxy.url)
    assert state_wants(apt, proxy, "tinymta").returncode == 0
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "FAILED" not in r.stdout, r.stdout + r.stderr
    manifest = json.loads((ds / "manifest.json").read_text())
    base = f"{origin.base}/debian/dists/stable/"
    assert base + "Release" in manifest["files"] and base + "Release.gpg" in manifest["files"]
    assert "its Release was fetched" in manifest["skipped"][base + "InRelease"]["reason"]
    wait_for(lambda: not wanted_doc(ds).get("requests"), timeout=30, what="the import of the trip")
    apt.run("update")
    apt.run("install", "--download-only", "tinymta")
    assert [p.name for p in apt.archives()] == [debs["tinymta"].name]
