"""Signed indexes checked, with the real apt: an InRelease that does not verify against the keyrings that vouch
for its suite (a mirror that signs with the wrong key, or not at all) is never stored or served as current;
the last good one is served (X-Cache: STALE), the error logged and counted, online, offline and from a stick."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from support.debrepo import AptClient, build_deb, export_signing_key, sign_with_another_key, write_indexes
from support.origin import Origin
from support.proxy import wait_for

INREL = "/debian/dists/stable/InRelease"


def _bad_signatures(proxy) -> int:
    with proxy.client() as c:
        return json.loads(c.get("http://pkgcache/stats.json").text)["total"].get("bad_signature", 0)


@pytest.mark.usefixtures("apt_tools")
def test_inrelease_signed_with_the_wrong_key_is_never_current(origin: Origin, start_proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    keyrings = tmp_path / "keyrings"
    export_signing_key(keyrings / "archive.gpg")
    cache = tmp_path / "cache"
    proxy = start_proxy("--set", f"pkgcache_keyrings={keyrings}", cache_dir=cache)
    apt = AptClient(tmp_path / "apt", f"{origin.base}/debian", proxy=proxy.url)
    apt.run("update")
    good = (repo / "dists/stable/InRelease").read_bytes()
    # the mirror now serves an InRelease signed by a key nobody here trusts
    sign_with_another_key(repo / "dists/stable", tmp_path / "mallory")
    asked = origin.count(INREL)
    apt.run("update")  # apt (trusted=yes here) goes on with the suite the cache vouches for
    assert origin.count(INREL) > asked
    with proxy.client() as c:
        r = c.get(origin.base + INREL)
    assert r.headers["x-cache"] == "STALE" and r.content == good
    assert "signature does not verify" in proxy.log_text() and _bad_signatures(proxy) >= 1
    # a mirror serving it unsigned is refused the same way
    (repo / "dists/stable/InRelease").write_bytes((repo / "dists/stable/Release").read_bytes())
    with proxy.client() as c:
        r = c.get(origin.base + INREL)
    assert r.headers["x-cache"] == "STALE" and r.content == good
    # signed by the right key again: taken in
    write_indexes(repo)
    with proxy.client() as c:
        r = c.get(origin.base + INREL)
        assert r.headers["x-cache"] == "MISS" and r.content == (repo / "dists/stable/InRelease").read_bytes()
    proxy.stop()
    origin.stop()
    p = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_keyrings={keyrings}", cache_dir=cache)
    with p.client() as c:
        r = c.get(origin.base + INREL)
    assert r.content == (repo / "dists/stable/InRelease").read_bytes()


@pytest.mark.usefixtures("apt_tools")
def test_a_first_inrelease_that_does_not_verify_is_refused(origin: Origin, start_proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    keyrings = tmp_path / "keyrings"
    export_signing_key(keyrings / "archive.gpg")
    sign_with_another_key(repo / "dists/stable", tmp_path / "mallory")
    proxy = start_proxy("--set", f"pkgcache_keyrings={keyrings}", cache_dir=tmp_path / "cache")
    with proxy.client() as c:
        r = c.get(origin.base + INREL)
        assert r.status_code == 502 and "signature does not verify" in r.text
        assert c.get(origin.base + INREL).status_code == 502  # never stored
    assert origin.count(INREL) == 2


@pytest.mark.usefixtures("apt_tools")
def test_a_stick_cannot_plant_an_inrelease(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """An InRelease on a datastore that does not verify is rejected at import; the cached one stays."""
    repo = origin.root / "debian"
    build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    keyrings = tmp_path / "keyrings"
    export_signing_key(keyrings / "archive.gpg")
    cache, ds = tmp_path / "cache", tmp_path / "ds"
    ds.mkdir()
    proxy = start_proxy("--set", f"pkgcache_keyrings={keyrings}", "--set", f"pkgcache_datastore={ds}",
                        cache_dir=cache)
    with proxy.client() as c:
        good = c.get(origin.base + INREL).content
    wait_for(lambda: (ds / "manifest.json").exists() or (ds / "wanted.json").exists(), what="the datastore")
    sign_with_another_key(repo / "dists/stable", tmp_path / "mallory")
    planted = (repo / "dists/stable/InRelease").read_bytes()
    url = origin.base + INREL
    key_path = ds / "files" / f"127.0.0.1_{origin.port}" / "debian/dists/stable/InRelease"
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(planted)
    manifest = {"version": 1, "files": {url: {"size": len(planted), "sha256": hashlib.sha256(planted).hexdigest(),
                                              "fetched": 4102444800.0}}, "failed": {}, "skipped": {}}
    (ds / "manifest.json").write_text(json.dumps(manifest))
    proxy.stop()
    r = subprocess.run([shutil.which("pkgcache") or "pkgcache", "--cache-dir", str(cache), "import", "--datastore",
                        str(ds), "--keyrings", str(keyrings)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "a signed index that does not verify" in r.stdout, r.stdout + r.stderr
    origin.stop()
    p = start_proxy("--set", "pkgcache_offline=on", cache_dir=cache)
    with p.client() as c:
        assert c.get(url).content == good, r.stdout + r.stderr
