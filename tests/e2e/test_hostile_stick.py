"""A hostile stick gets nothing, on both setups: the datastore is untrusted input from end to end.

Each stick is written by hand, as an attacker would: links inside it and as its own folder, a file that
contradicts the index the cache holds, pages for hosts nobody here uses, dates in the future, a huge
manifest.  The proxy imports what it may and refuses the rest, one entry at a time; nothing outside the
cache and the stick is written, and an origin that answers is never overridden by the stick.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pkgcache_suite.policy.cachekey import key_for_url
from pkgcache_suite.storage import CacheStore
from support.origin import Origin
from support.proxy import Proxy, wait_for
from support.tier import TierProcess

SETUPS = ("embedded", "tier")
GOOD = b"a package the origin really has\n" * 300
EVIL = b"the attacker's own bytes\n" * 300
PKG = "/debian/pool/main/g/good/good_1.0_all.deb"
OTHER = "/debian/pool/main/o/other/other_1.0_all.deb"
INDEX = "/debian/dists/stable/main/binary-amd64/Packages"
FUTURE = 4102444800.0  # 2100-01-01


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest) -> str:
    return request.param


def _start(setup: str, cache: Path, ds: Path) -> Proxy | TierProcess:
    opts = ("--set", f"pkgcache_datastore={ds}")
    return Proxy(cache, *opts) if setup == "embedded" else TierProcess(cache, 1, *opts)


@pytest.fixture
def site(setup: str, origin: Origin, tmp_path: Path) -> Iterator[tuple[Proxy | TierProcess, Path, Origin]]:
    """A proxy whose stick is tmp_path/stick, and an origin it has used (its Packages index is cached)."""
    origin.put(PKG, GOOD)
    origin.put(OTHER, GOOD + b"other")
    origin.put(INDEX, (f"Package: good\nVersion: 1.0\nFilename: {PKG[len('/debian/'):]}\nSize: {len(GOOD)}\n"
                       f"SHA256: {hashlib.sha256(GOOD).hexdigest()}\n\n").encode())
    ds = tmp_path / "stick"
    proxy = _start(setup, tmp_path / "cache", ds)
    with proxy.client() as c:
        assert c.get(origin.base + INDEX).status_code == 200
    store = CacheStore(tmp_path / "cache")
    wait_for(lambda: store.expected(key_for_url(origin.base + PKG)) is not None, timeout=30,
             what="the cached index's listing recorded")
    store.close()
    wait_for(lambda: (ds / "pkgcache-datastore.json").exists(), what="the datastore initialised")
    yield proxy, ds, origin
    proxy.stop()
    assert "Traceback" not in proxy.log_text() and "Addon error" not in proxy.log_text(), proxy.log_text()


def _put(ds: Path, url: str, body: bytes) -> Path:
    f = ds / "files" / key_for_url(url)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(body)
    return f


def _rec(body: bytes, **extra: object) -> dict:
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "fetched": time.time(), **extra}


def _manifest(ds: Path, files: dict, skipped: dict | None = None) -> None:
    tmp = ds / ".manifest.tmp"
    tmp.write_text(json.dumps({"version": 1, "files": files, "failed": {}, "skipped": skipped or {}}))
    os.replace(tmp, ds / "manifest.json")


def _report(ds: Path) -> dict:
    path = ds / "import-report.json"
    wait_for(lambda: path.exists() and path.stat().st_mtime >= (ds / "manifest.json").stat().st_mtime,
             timeout=30, what="the import report")
    return json.loads(path.read_text())


def _get(proxy: Proxy | TierProcess, url: str) -> tuple[int, str, bytes]:
    with proxy.client() as c:
        r = c.get(url)
    return r.status_code, r.headers.get("x-cache", ""), r.content


def test_a_linked_folder_on_the_stick_is_not_followed_and_the_good_file_after_it_is_imported(site, tmp_path):
    proxy, ds, origin = site
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.deb").write_bytes(EVIL)
    linked = ds / "files" / key_for_url(origin.base + "/debian/pool/main/s/x")
    linked.parent.mkdir(parents=True)
    linked.symlink_to(outside, target_is_directory=True)  # files/.../s/x -> outside the stick
    bad_url = origin.base + "/debian/pool/main/s/x/secret.deb"
    (ds / "files" / key_for_url(origin.base + "/debian/pool/main/l/link.deb")).parent.mkdir(parents=True)
    (ds / "files" / key_for_url(origin.base + "/debian/pool/main/l/link.deb")).symlink_to(outside / "secret.deb")
    link_url = origin.base + "/debian/pool/main/l/link.deb"
    _put(ds, origin.base + OTHER, GOOD + b"other")
    _manifest(ds, {bad_url: _rec(EVIL), link_url: _rec(EVIL), origin.base + OTHER: _rec(GOOD + b"other")})
    report = _report(ds)
    assert set(report["rejected"]) == {bad_url, link_url}, report
    assert report["imported"] == [origin.base + OTHER] and report["error"] is None
    for url in (bad_url, link_url):
        status, xcache, body = _get(proxy, url)
        assert body != EVIL and xcache != "HIT", (url, status, xcache)
    assert _get(proxy, origin.base + OTHER)[1] == "HIT"
    assert "detach" not in proxy.log_text().lower()


def test_a_stick_whose_folder_is_a_link_is_refused_and_nothing_is_written_through_it(setup, origin, tmp_path):
    """The stick is inserted (simulated events: the one seam for a USB device) and its pkgcache folder is a
    link to another folder of the machine: refused, logged, and nothing is written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    events, mounts, mnt = tmp_path / "udev-events", tmp_path / "mounts", tmp_path / "media" / "STICK"
    mounts.write_text("proc /proc proc rw 0 0\n")
    events.write_text("")
    mnt.mkdir(parents=True)
    (mnt / "pkgcache").symlink_to(elsewhere, target_is_directory=True)
    opts = ("--set", "pkgcache_datastore=usb", "--set", f"pkgcache_usb_events=file:{events}",
            "--set", f"pkgcache_mounts={mounts}")
    proxy = Proxy(tmp_path / "cache", *opts) if setup == "embedded" else TierProcess(tmp_path / "cache", 1, *opts)
    try:
        with open(mounts, "a") as f:
            f.write(f"/dev/sdz1 {mnt} vfat rw 0 0\n")
        with open(events, "a") as f:
            f.write("add /dev/sdz1\n")
        wait_for(lambda: "symbolic link" in proxy.log_text(), timeout=20, what="the refusal in the log")
        with proxy.client() as c:
            c.get(origin.base + "/debian/pool/main/n/none/none_1_all.deb")
        time.sleep(1.5)  # a wanted list would be written within a second
    finally:
        proxy.stop()
    assert list(elsewhere.iterdir()) == []
    assert (mnt / "pkgcache").is_symlink()


def test_a_file_that_contradicts_the_cached_index_is_not_imported(site):
    proxy, ds, origin = site
    evil = EVIL[: len(GOOD)].ljust(len(GOOD), b"x")  # even the size the index lists
    _put(ds, origin.base + PKG, evil)
    _manifest(ds, {origin.base + PKG: _rec(evil)})
    report = _report(ds)
    assert "a cached index lists it" in report["rejected"][origin.base + PKG], report
    status, xcache, body = _get(proxy, origin.base + PKG)
    assert status == 200 and body == GOOD and xcache == "MISS"


def test_pages_for_hosts_nobody_uses_are_not_imported_and_future_dates_override_nothing(site):
    proxy, ds, origin = site
    stranger = "http://127.0.0.1:9/debian/dists/stable/InRelease"
    page = origin.base + "/debian/dists/stable/Release"
    origin.put("/debian/dists/stable/Release", b"Origin: the real one\n")
    _put(ds, stranger, b"Origin: planted\n")
    _put(ds, page, b"Origin: the stick's\n")
    files = {stranger: _rec(b"Origin: planted\n", fetched=FUTURE),
             page: _rec(b"Origin: the stick's\n", fetched=FUTURE, last_modified="Fri, 01 Jan 2100 00:00:00 GMT",
                        etag='"planted"')}
    _manifest(ds, files, skipped={origin.base + OTHER: {"when": FUTURE, "why": "not there"}})
    report = _report(ds)
    assert "not asked for" in report["rejected"][stranger], report
    assert page in report["imported"]
    store = CacheStore(proxy.cache_dir)
    try:
        entry = store.lookup(key_for_url(page))
        assert entry is not None and entry.fetched <= time.time() and entry.last_modified is None
        assert store.lookup(key_for_url(stranger)) is None
    finally:
        store.close()
    status, _xcache, body = _get(proxy, page)
    assert status == 200 and body == b"Origin: the real one\n"  # the origin answers: its page, not the stick's
    status, _xcache, body = _get(proxy, origin.base + OTHER)
    assert status == 200 and body == GOOD + b"other"  # the stick's "not there" does not answer online


def test_an_admin_takes_a_whole_stick_on_purpose_and_it_is_still_verified(site):
    """`pkgcache import --datastore`: what the proxy refused as unasked is taken; a contradiction is not."""
    proxy, ds, origin = site
    stranger = "http://127.0.0.1:9/debian/dists/stable/InRelease"
    _put(ds, stranger, b"Origin: prepared elsewhere\n")
    _put(ds, origin.base + PKG, EVIL)
    _manifest(ds, {stranger: _rec(b"Origin: prepared elsewhere\n"), origin.base + PKG: _rec(EVIL)})
    assert "not asked for" in _report(ds)["rejected"][stranger]
    r = subprocess.run(["pkgcache", "--cache-dir", str(proxy.cache_dir), "import", "--datastore", str(ds)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr  # one entry refused
    assert f"imported {stranger}" in r.stdout and f"REFUSED {origin.base + PKG}: a cached index" in r.stdout
    store = CacheStore(proxy.cache_dir)
    try:
        assert store.lookup(key_for_url(stranger)) is not None
        assert store.lookup(key_for_url(origin.base + PKG)) is None
    finally:
        store.close()
    status, _xcache, body = _get(proxy, origin.base + PKG)
    assert status == 200 and body == GOOD
    r = subprocess.run(["pkgcache", "--cache-dir", str(proxy.cache_dir), "import", "--datastore",
                        str(ds / "files")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a pkgcache datastore" in r.stderr, r.stdout + r.stderr


def test_a_huge_manifest_is_refused_unread(site):
    proxy, ds, origin = site
    pid = proxy.proc.pid if isinstance(proxy, Proxy) else None
    filler = {f"{origin.base}/debian/pool/main/f/f{i}.deb": _rec(b"x") for i in range(330_000)}
    _manifest(ds, filler)
    assert (ds / "manifest.json").stat().st_size > 32 << 20
    wait_for(lambda: "more than the" in proxy.log_text(), timeout=30, what="the refusal in the log")
    if pid is not None:
        peak = int(next(ln.split()[1] for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if ln.startswith("VmHWM:")))
        assert peak < 400 * 1024, f"peak RSS {peak} KiB"  # the manifest was never parsed


def test_fetch_on_the_connected_side_writes_nothing_through_a_link_on_the_stick(origin: Origin, tmp_path: Path):
    """The stick travels both ways: `pkgcache fetch` on the connected machine meets the same links."""
    import subprocess

    from pkgcache_suite.stick.datastore import Datastore

    origin.put(PKG, GOOD)
    ds, _ = Datastore.open(tmp_path / "stick")
    url = origin.base + PKG
    ds.write_wanted([{"url": url, "first_seen": time.time(), "count": 1, "clients": [], "headers": {}}], {})
    outside = tmp_path / "outside"
    outside.mkdir()
    host = key_for_url(url).split("/", 1)[0]
    (ds.root / "files" / host).symlink_to(outside, target_is_directory=True)
    r = subprocess.run(["pkgcache", "fetch", str(ds.root)], capture_output=True, text=True, timeout=120)
    assert list(outside.rglob("*")) == [], r.stdout + r.stderr
    assert r.returncode != 0 and url not in json.loads((ds.root / "manifest.json").read_text())["files"]
