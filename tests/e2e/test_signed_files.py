"""Signed indexes other than an InRelease, with the real clients: a Debian Release (Release.gpg), an RPM
repository's repomd.xml (repomd.xml.asc, with the keyring its Remap line names), a pacman database (.db.sig)
and an Alpine APKINDEX.tar.gz (apk-tools 2's .SIGN.RSA256 member, or apk-tools 3's signature block, against
an Alpine public key).  Signed with the wrong key, the new copy is never stored or served as current: the client goes on
with the last good one (X-Cache: STALE) and the signature it was checked with; the dashboard and /metrics
say so."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest

from support.apkrepo import (
    ARCH as APK_ARCH, Package, apk_add, sign_index, signing_key, v2_repository, v3_repository,
)
from support.debrepo import AptClient, build_deb, detach_sign, export_signing_key, sign_with_another_key, write_indexes
from support.origin import Origin
from support.proxy import wait_for, wanted_urls
from support.rpmpac import FEDORA, build_pacman_repo, build_rpm_repo, dnf_download, pacman_download

RELEASE = "/debian/dists/stable/Release"


def _bad_signatures(proxy) -> int:
    with proxy.client() as c:
        return json.loads(c.get("http://pkgcache/stats.json").text)["total"].get("bad_signature", 0)


def _without_inrelease(repo: Path) -> None:
    (repo / "dists/stable/InRelease").unlink()  # apt then reads Release and Release.gpg


@pytest.mark.usefixtures("apt_tools")
@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_a_release_and_its_release_gpg(setup: str, origin: Origin, start_proxy, start_tier, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    _without_inrelease(repo)
    keyrings = export_signing_key(tmp_path / "keyrings" / "archive.gpg").parent
    start = start_proxy if setup == "embedded" else start_tier
    proxy = start("--set", f"pkgcache_keyrings={keyrings}", cache_dir=tmp_path / "cache")
    apt = AptClient(tmp_path / "apt", f"{origin.base}/debian", proxy=proxy.url)
    apt.run("update")
    good = {n: (repo / "dists/stable" / n).read_bytes() for n in ("Release", "Release.gpg")}
    assert origin.count(RELEASE + ".gpg") == 1  # fetched with its Release; apt's own ask was answered with it
    # the mirror publishes a new Release signed by a key nobody here trusts
    build_deb(repo, "alpha", "2.0")
    write_indexes(repo)
    _without_inrelease(repo)
    sign_with_another_key(repo / "dists/stable", tmp_path / "mallory")
    apt.run("update")
    with proxy.client() as c:
        r = c.get(origin.base + RELEASE)
        assert r.headers["x-cache"] == "STALE" and r.content == good["Release"]
        sig = c.get(origin.base + RELEASE + ".gpg")
        assert sig.headers["x-cache"] == "HIT" and sig.content == good["Release.gpg"]  # the pair checked
        page = c.get("http://pkgcache/").text
        metrics = c.get("http://pkgcache/metrics").text
    assert "The signature of " in page and "does not verify" in page, "no dashboard alert"
    assert any(ln.startswith("pkgcache_requests_total{") and 'outcome="bad_signature"' in ln
               and float(ln.rsplit(" ", 1)[1]) >= 1 for ln in metrics.splitlines()), metrics
    assert _bad_signatures(proxy) >= 1 and "signature does not verify" in proxy.log_text()
    # signed by the right key again: taken in, and the alert goes
    write_indexes(repo)
    _without_inrelease(repo)
    apt.run("update")
    with proxy.client() as c:
        assert c.get(origin.base + RELEASE).content == (repo / "dists/stable/Release").read_bytes()
        assert "The signature of " not in c.get("http://pkgcache/").text


def test_a_repomd_xml_asc_checked_with_its_repositorys_keyring(origin: Origin, start_proxy, tmp_path: Path) -> None:
    build_rpm_repo(origin.root, where=FEDORA)
    repodata = origin.root / FEDORA / "repodata"
    detach_sign(repodata / "repomd.xml", ".asc")
    keyring = export_signing_key(tmp_path / "fedora.gpg")
    conf = tmp_path / "pkgcache.conf"
    conf.write_text(f"Remap-fedora: 127.0.0.1:{origin.port}/fedora ; ; keyring={keyring}\n")
    proxy = start_proxy("--set", f"pkgcache_conf={conf}", cache_dir=tmp_path / "cache")
    r = dnf_download(proxy, origin, tmp_path / "dnf")
    assert r.returncode == 0, r.stdout + r.stderr
    good = (repodata / "repomd.xml").read_bytes()
    # a new repomd.xml, signed with the wrong key
    build_rpm_repo(origin.root, name="other", where=FEDORA)
    assert (repodata / "repomd.xml").read_bytes() != good
    detach_sign(repodata / "repomd.xml", ".asc", home=tmp_path / "mallory")
    r = dnf_download(proxy, origin, tmp_path / "dnf")
    assert r.returncode == 0, r.stdout + r.stderr  # the metadata the last good repomd.xml names
    with proxy.client() as c:
        r = c.get(f"{origin.base}/{FEDORA}/repodata/repomd.xml")
    assert r.headers["x-cache"] == "STALE" and r.content == good
    assert _bad_signatures(proxy) >= 1


def test_a_pacman_db_sig(origin: Origin, start_proxy, tmp_path: Path) -> None:
    build_pacman_repo(origin.root)
    db = origin.root / "arch/demo/os/x86_64/demo.db"
    detach_sign(db, ".sig")
    keyrings = export_signing_key(tmp_path / "keyrings" / "archive.gpg").parent
    proxy = start_proxy("--set", f"pkgcache_keyrings={keyrings}", cache_dir=tmp_path / "cache")
    r = pacman_download(proxy, origin, tmp_path / "pacman")
    assert r.returncode == 0, r.stdout + r.stderr
    good = db.read_bytes()
    # the database changes, and is signed with the wrong key
    subprocess.run(["repo-add", "-q", "-R", "demo.db.tar.gz"], cwd=db.parent, check=True, capture_output=True)
    subprocess.run(["repo-add", "-q", "demo.db.tar.gz", *[p.name for p in db.parent.glob("*.pkg.tar.gz")]],
                   cwd=db.parent, check=True, capture_output=True)
    detach_sign(db, ".sig", home=tmp_path / "mallory")
    r = pacman_download(proxy, origin, tmp_path / "pacman")
    assert r.returncode == 0, r.stdout + r.stderr
    with proxy.client() as c:
        r = c.get(f"{origin.base}/arch/demo/os/x86_64/demo.db")
    assert r.headers["x-cache"] == "STALE" and r.content == good
    assert _bad_signatures(proxy) >= 1


@pytest.mark.parametrize("fmt", ["v2", "v3"])
def test_an_apkindex_signature(fmt: str, origin: Origin, start_proxy, tmp_path: Path) -> None:
    """v2: its .SIGN.RSA256 member; v3: the signature block apk mkndx writes, checked the way apk does."""
    name = "builder@example.invalid-1.rsa.pub"
    key, _ = signing_key(tmp_path / "keyrings", name)
    mallory, _ = signing_key(tmp_path / "mallory", name)  # the same key name, another key
    folder = f"/alpine/v3/main/{APK_ARCH}"

    def publish(packages: list[Package], signer, signer_dir: Path) -> bytes:
        if fmt == "v2":
            files = v2_repository(packages)
            files["APKINDEX.tar.gz"] = sign_index(files["APKINDEX.tar.gz"], signer, name)
        else:
            build = tmp_path / f"build-{len(list(tmp_path.glob('build-*')))}"
            files = v3_repository(packages, build, sign_key=signer_dir.parent / f"{signer_dir.name}.key")
        for file_name, body in files.items():
            origin.put(f"{folder}/{file_name}", body)
        return files["APKINDEX.tar.gz"]

    demo = Package("demo", "1.0-r0", {"usr/share/demo/README": b"demo\n"})
    good = publish([demo], key, tmp_path / "keyrings")
    proxy = start_proxy("--set", f"pkgcache_keyrings={tmp_path / 'keyrings'}", cache_dir=tmp_path / "cache")
    r = apk_add(proxy, f"{origin.base}/alpine/v3/main", tmp_path / "first", "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    with proxy.client() as c:
        assert c.get(f"{origin.base}{folder}/APKINDEX.tar.gz").content == good
    publish([demo, Package("extra", "1.0-r0", {"usr/share/extra/x": b"x\n"})], mallory, tmp_path / "mallory")
    r = apk_add(proxy, f"{origin.base}/alpine/v3/main", tmp_path / "second", "demo")
    assert r.returncode == 0, r.stdout + r.stderr  # the last good index
    with proxy.client() as c:
        r = c.get(f"{origin.base}{folder}/APKINDEX.tar.gz")
    assert r.headers["x-cache"] == "STALE" and r.content == good
    assert _bad_signatures(proxy) >= 1 and "signature does not verify" in proxy.log_text()


def test_a_stick_cannot_plant_a_repomd_xml(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """The proxy's own import from a datastore checks a remapped repository's repomd.xml and its .asc with the
    keyring its Remap line names: a pair signed with another key is rejected, the cached one stays."""
    build_rpm_repo(origin.root, where=FEDORA)
    repodata = origin.root / FEDORA / "repodata"
    detach_sign(repodata / "repomd.xml", ".asc")
    conf = tmp_path / "pkgcache.conf"
    conf.write_text(f"Remap-fedora: 127.0.0.1:{origin.port}/fedora ; ; "
                    f"keyring={export_signing_key(tmp_path / 'fedora.gpg')}\n")
    ds = tmp_path / "ds"
    ds.mkdir()
    proxy = start_proxy("--set", f"pkgcache_conf={conf}", "--set", f"pkgcache_datastore={ds}",
                        cache_dir=tmp_path / "cache")
    url = f"{origin.base}/{FEDORA}/repodata/repomd.xml"
    with proxy.client() as c:
        good = c.get(url).content
    wait_for(lambda: (ds / "pkgcache-datastore.json").exists(), what="the datastore initialised")
    build_rpm_repo(origin.root, name="other", where=FEDORA)
    detach_sign(repodata / "repomd.xml", ".asc", home=tmp_path / "mallory")
    files = {}
    for name in ("repomd.xml", "repomd.xml.asc"):
        body = (repodata / name).read_bytes()
        planted = ds / "files" / f"127.0.0.1_{origin.port}" / FEDORA / "repodata" / name
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(body)
        files[f"{url.rsplit('/', 1)[0]}/{name}"] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                                    "fetched": time.time() + 3600}
    (ds / "manifest.json").write_text(json.dumps({"version": 1, "files": files, "failed": {}, "skipped": {}}))
    report = ds / "import-report.json"
    wait_for(lambda: report.exists() and url in json.loads(report.read_text()).get("rejected", {}), timeout=60,
             what="the planted repomd.xml rejected")
    assert "does not verify" in json.loads(report.read_text())["rejected"][url]
    proxy.stop()
    origin.stop()
    offline = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_conf={conf}", cache_dir=tmp_path / "cache")
    with offline.client() as c:
        assert c.get(url).content == good


@pytest.mark.usefixtures("apt_tools")
def test_fetch_brings_the_signature_beside_a_release(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """Offline, apt wants a suite that has only Release and Release.gpg: `pkgcache fetch` brings the Release.gpg
    too (apt never asked for it, the offline proxy having no Release to give), the import checks the pair, and
    apt updates offline from it."""
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    _without_inrelease(repo)
    keyrings = export_signing_key(tmp_path / "keyrings" / "archive.gpg").parent
    ds = tmp_path / "ds"
    ds.mkdir()
    proxy = start_proxy("--set", f"pkgcache_keyrings={keyrings}", "--set", f"pkgcache_datastore={ds}",
                        "--set", "pkgcache_offline=on", cache_dir=tmp_path / "cache")
    apt = AptClient(tmp_path / "apt", f"{origin.base}/debian", proxy=proxy.url)
    assert apt.run("update", check=False).returncode != 0
    wait_for(lambda: origin.base + RELEASE in wanted_urls(ds), what="the Release wanted")
    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert origin.base + RELEASE + ".gpg" in json.loads((ds / "manifest.json").read_text())["files"], r.stdout
    wait_for(lambda: origin.base + RELEASE not in wanted_urls(ds), timeout=60, what="the import of the Release")
    report = json.loads((ds / "import-report.json").read_text())
    assert not any(u.endswith("/Release") for u in report["rejected"]), report
    origin.stop()
    apt.run("update")  # offline, from the suite the import checked
