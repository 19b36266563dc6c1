"""Offline mode with real parts: mitmdump with the suite, a Debian repository served by a local origin that the
test takes down, a real apt-get, and the real `pkgcache fetch` command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support.proxy import Proxy, wait_for
from support.debrepo import AptClient, build_deb, write_indexes
from support.origin import Origin

needs_apt = pytest.mark.usefixtures("apt_tools")
DEB = "/debian/pool/main/a/alpha/alpha_1.0_all.deb"


def wanted_urls(ds: Path) -> list[str]:
    try:
        return [w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]]
    except FileNotFoundError:
        return []


def import_caught_up(ds: Path) -> bool:
    """The proxy imported the datastore as the trip left it (it may import a trip's first files early)."""
    try:
        return (ds / "import-report.json").stat().st_mtime >= (ds / "manifest.json").stat().st_mtime
    except FileNotFoundError:
        return False


def fetch(ds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkgcache", "fetch", str(ds), *args], capture_output=True, text=True, timeout=300)


@needs_apt
def test_update_fetch_update_install_fetch_install_converges(origin: Origin, start_proxy, tmp_path: Path) -> None:
    repo = origin.root / "debian"
    debs = [build_deb(repo, "alpha", "1.0", 30_000), build_deb(repo, "beta", "2.1", 300_000, depends="alpha"),
            build_deb(repo, "gamma", "0.3", 10_000)]
    write_indexes(repo, by_hash=True)
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}")  # pkgcache_offline=auto
    apt = AptClient(tmp_path / "apt", f"{origin.base}/debian", proxy=proxy.url)
    origin.stop()  # the offline side cannot reach it: connections are refused

    def trip() -> subprocess.CompletedProcess[str]:
        origin.restart()
        try:
            r = fetch(ds, "-v")  # a line per file
        finally:
            origin.stop()
        return r

    # 1. update offline: nothing cached, InRelease recorded
    r = apt.run("update", check=False)
    assert "404" in r.stdout + r.stderr
    wait_for(lambda: any(u.endswith("/InRelease") for u in wanted_urls(ds)), what="InRelease in the wanted list")
    # 2. fetch on the "connected machine": InRelease, and the by-hash indexes it names for our architecture
    r = trip()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "by-hash/SHA256/" in r.stderr
    wait_for(lambda: not any(u.endswith("/InRelease") for u in wanted_urls(ds)), timeout=20,
             what="the import of the fetched InRelease")
    wait_for(lambda: import_caught_up(ds), timeout=20, what="the import of the whole trip")
    # 3. update offline now succeeds from the imported files
    r = apt.run("update")
    assert "Err" not in r.stdout
    # 4. install offline: the packages are missing, recorded
    r = apt.run("install", "--download-only", "beta", "gamma", check=False)
    assert r.returncode != 0
    wait_for(lambda: len([u for u in wanted_urls(ds) if u.endswith(".deb")]) == 3, what="3 .debs wanted")
    # 5. fetch again: the .debs, checked against the SHA-256 sums of the fetched Packages index
    r = trip()
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: not any(u.endswith(".deb") for u in wanted_urls(ds)), timeout=20, what="import of the .debs")
    # 6. install offline succeeds
    apt.run("install", "--download-only", "beta", "gamma")
    assert {p.name: p.read_bytes() for p in apt.archives()} == {d.name: d.read_bytes() for d in debs}
    report = json.loads((ds / "import-report.json").read_text())
    assert report["rejected"] == {}


def _offline_proxy(start_proxy, ds: Path, *extra: str) -> Proxy:
    return start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on", *extra)


def test_concurrent_offline_misses_make_one_wanted_entry(origin: Origin, start_proxy, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    proxy = _offline_proxy(start_proxy, ds)
    url = origin.base + DEB

    def get(_: int) -> tuple[int, str]:
        with proxy.client() as c:
            r = c.get(url, headers={"Accept": "application/x-test"})
            return r.status_code, r.text

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(get, range(16)))
    assert all(code == 404 and "recorded" in text for code, text in results)
    wait_for(lambda: wanted_urls(ds) == [url], what="the wanted list on disk")
    entry = json.loads((ds / "wanted.json").read_text())["wanted"][0]
    assert entry["count"] == 16 and entry["headers"]["accept"] == "application/x-test"
    assert entry["clients"] == ["127.0.0.1"]
    assert origin.log == []  # offline=on never contacts upstream
    wait_for(lambda: "is complete (1 URLs): safe to remove" in proxy.log_text(), what="the log line of the write")


def test_cached_files_are_served_offline_and_indexes_stale(origin: Origin, start_proxy, tmp_path: Path) -> None:
    origin.put(DEB, b"package")
    origin.put("/debian/dists/stable/InRelease", b"release")
    proxy = start_proxy("--set", f"pkgcache_datastore={tmp_path / 'ds'}", "--set", "pkgcache_probe_interval=0")
    with proxy.client() as c:
        c.get(origin.base + DEB)
        c.get(origin.base + "/debian/dists/stable/InRelease")
    origin.stop()
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
        assert r.status_code == 200 and r.headers["x-cache"] == "HIT"
        r = c.get(origin.base + "/debian/dists/stable/InRelease")
        assert r.status_code == 200 and r.headers["x-cache"] == "STALE" and r.content == b"release"
        assert "warning" in r.headers
        r = c.get(origin.base + "/debian/pool/main/z/zeta_1_all.deb")
        assert r.status_code == 404


def test_wanted_list_survives_kill_and_restart(origin: Origin, start_proxy, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    cache = tmp_path / "cache"
    proxy = _offline_proxy(start_proxy, ds, cache_dir=cache) if False else start_proxy(
        "--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on", cache_dir=cache)
    stop = threading.Event()

    def hammer() -> None:
        i = 0
        with proxy.client() as c:
            while not stop.is_set() and i < 2000:
                try:
                    c.get(f"{origin.base}/debian/pool/main/x/x{i}_1_all.deb")
                except Exception:
                    return
                i += 1

    t = threading.Thread(target=hammer)
    t.start()
    wait_for(lambda: len(wanted_urls(ds)) > 0, timeout=20, what="a first write")
    time.sleep(0.7)
    proxy.proc.send_signal(signal.SIGKILL)  # no chance to flush
    proxy.proc.wait()
    stop.set()
    t.join()
    for f in (ds / "wanted.json", cache / ".pkgcache" / "wanted.json"):
        doc = json.loads(f.read_text())  # never truncated: parses
        assert all(w["url"].endswith(".deb") for w in doc["wanted"])
    before = set(wanted_urls(ds))
    assert before
    proxy2 = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on", cache_dir=cache)
    with proxy2.client() as c:
        c.get(origin.base + "/debian/pool/main/n/new_1_all.deb")
    wait_for(lambda: origin.base + "/debian/pool/main/n/new_1_all.deb" in wanted_urls(ds), what="restart write")
    assert before <= set(wanted_urls(ds))


def test_tampered_file_in_datastore_is_rejected(origin: Origin, start_proxy, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    good = b"good package" * 100
    origin.put(DEB, good)
    url = origin.base + DEB
    proxy = _offline_proxy(start_proxy, ds)
    with proxy.client() as c:
        assert c.get(url).status_code == 404
    wait_for(lambda: wanted_urls(ds) == [url], what="wanted")
    # fetch on the "connected machine" (a copy of the stick, so the proxy cannot import it early)
    staging = tmp_path / "staging"
    shutil.copytree(ds, staging)
    r = fetch(staging)
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((staging / "manifest.json").read_text())
    assert manifest["files"][url]["sha256"] == hashlib.sha256(good).hexdigest()
    # tampered with on the way (same size, other bytes), then the stick comes back
    f = staging / "files" / f"127.0.0.1_{origin.port}" / DEB.lstrip("/")
    f.write_bytes(b"EVIL" + good[4:])
    shutil.copytree(staging / "files", ds / "files", dirs_exist_ok=True)
    shutil.copy(staging / "manifest.json", ds / "manifest.json")
    wait_for(lambda: "not importing" in proxy.log_text(), timeout=20, what="the rejection")
    assert "verification failed" in proxy.log_text()
    report_file = ds / "import-report.json"
    wait_for(lambda: report_file.exists() and url in json.loads(report_file.read_text())["rejected"],
             what="the rejection in import-report.json")
    with proxy.client() as c:
        assert c.get(url).status_code == 404  # not served
    assert wanted_urls(ds) == [url]  # still wanted
    # the next fetch notices the damaged copy and downloads it again
    r = fetch(ds)
    assert r.returncode == 0
    wait_for(lambda: wanted_urls(ds) == [], timeout=20, what="import after refetch")
    with proxy.client() as c:
        assert c.get(url).content == good


def test_usb_stick_found_initialised_pulled_mid_write_and_reinserted(origin: Origin, start_proxy, tmp_path: Path) -> None:
    events = tmp_path / "udev-events"
    mounts = tmp_path / "mounts"
    mnt = tmp_path / "media" / "STICK"
    mounts.write_text("proc /proc proc rw 0 0\n")
    events.write_text("")
    origin.put(DEB, b"cached before going offline")
    proxy = start_proxy("--set", "pkgcache_datastore=usb", "--set", f"pkgcache_usb_events=file:{events}",
                        "--set", f"pkgcache_mounts={mounts}", "--set", "pkgcache_probe_interval=0")
    with proxy.client() as c:
        assert c.get(origin.base + DEB).status_code == 200
    origin.stop()
    # insert: the device appears, then the desktop mounts it
    with open(events, "a") as f:
        f.write("add /dev/sdz1\n")
    time.sleep(0.5)
    mnt.mkdir(parents=True)
    with open(mounts, "a") as f:
        f.write(f"/dev/sdz1 {mnt} vfat rw 0 0\n")
    wait_for(lambda: "initialised datastore" in proxy.log_text(), what="datastore initialised on the stick")
    ds = mnt / "pkgcache"
    assert (ds / "pkgcache-datastore.json").is_file()
    with proxy.client() as c:
        assert c.get(origin.base + "/debian/pool/main/m/m1_1_all.deb").status_code == 404
    wait_for(lambda: len(wanted_urls(ds)) == 1, what="wanted list on the stick")
    # pulled out while the proxy is about to write: the folder vanishes under it
    shutil.rmtree(mnt)
    with proxy.client() as c:
        assert c.get(origin.base + "/debian/pool/main/m/m2_1_all.deb").status_code == 404
    wait_for(lambda: "went away" in proxy.log_text(), what="the failed write to be noticed")
    with open(events, "a") as f:
        f.write("remove /dev/sdz1\n")
    # the proxy carries on from its cache
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
        assert r.status_code == 200 and r.content == b"cached before going offline"
        assert c.get(origin.base + "/debian/pool/main/m/m3_1_all.deb").status_code == 404
    # nothing in the cache was damaged
    store_check = subprocess.run(["pkgcache", "--cache-dir", str(proxy.cache_dir), "ls"], capture_output=True,
                                 text=True, check=True).stdout
    assert "MISSING" not in store_check and origin.base + DEB in store_check
    # reinserted (the datastore is found again): every URL recorded meanwhile is written to it
    mnt.mkdir(parents=True)
    Path(mnt / "pkgcache").mkdir()
    (mnt / "pkgcache" / "pkgcache-datastore.json").write_text(json.dumps({"format": "pkgcache-datastore",
                                                                          "version": 1}))
    with open(events, "a") as f:
        f.write("add /dev/sdz1\n")
    wait_for(lambda: len(wanted_urls(mnt / "pkgcache")) == 3, what="the wanted list written to the new stick")
    wait_for(lambda: "using datastore" in proxy.log_text(), what="the log line of the attach")


def test_fetch_resumes_retries_and_reports_failures(origin: Origin, tmp_path: Path) -> None:
    from pkgcache_suite.stick.datastore import Datastore

    ds, _ = Datastore.open(tmp_path / "ds")
    big = os.urandom(3 * 1024 * 1024)
    origin.put("/debian/pool/main/b/big_1_all.deb", big)
    origin.put("/debian/pool/main/f/flaky_1_all.deb", b"flaky")
    from support.origin import Behaviour

    origin.behaviours["/debian/pool/main/f/flaky_1_all.deb"] = Behaviour(fail_times=2)
    urls = [origin.base + p for p in ("/debian/pool/main/b/big_1_all.deb", "/debian/pool/main/f/flaky_1_all.deb",
                                      "/debian/pool/main/g/gone_1_all.deb")]
    ds.write_wanted([{"url": u, "first_seen": 0, "count": 1} for u in urls], {})
    # a partial download left by an interrupted earlier run
    part = ds.root / "files" / ".partial" / hashlib.sha256(urls[0].encode()).hexdigest()
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(big[:1_000_000])
    st = (origin.root / "debian/pool/main/b/big_1_all.deb").stat()
    import email.utils

    part.with_suffix(".json").write_text(json.dumps(
        {"last_modified": email.utils.formatdate(st.st_mtime, usegmt=True)}))
    r = fetch(ds.root)
    assert r.returncode == 1, r.stdout  # one permanent failure
    assert "NOT FOUND UPSTREAM" in r.stdout and "gone_1_all.deb: HTTP 404" in r.stdout, r.stdout
    assert "1 needed files not found upstream, 0 other failures" in r.stdout, r.stdout
    # not on a terminal: a line per tenth of the bytes, a line for the failure, none for the files that worked
    assert "fetch: 100% (3.0 MiB of 3.0 MiB" in r.stderr and "FAILED: " in r.stderr and "ok: " not in r.stderr
    assert r.stderr.count("%") <= 10 and "3 files" not in r.stdout and "2 files, 3.0 MiB in" in r.stdout
    big_req = [x for x in origin.log if x.path.endswith("big_1_all.deb")]
    assert big_req[0].headers.get("range") == "bytes=1000000-"
    assert origin.count("/debian/pool/main/f/flaky_1_all.deb") == 3
    manifest = json.loads((ds.root / "manifest.json").read_text())
    assert manifest["files"][urls[0]]["sha256"] == hashlib.sha256(big).hexdigest()
    assert manifest["files"][urls[1]]["size"] == 5
    assert "HTTP 404" in manifest["failed"][urls[2]]["reason"] and manifest["failed"][urls[2]]["permanent"]
    assert (ds.root / "files" / f"127.0.0.1_{origin.port}" / "debian/pool/main/b/big_1_all.deb").read_bytes() == big


@needs_apt
def test_fetch_rejects_a_deb_that_does_not_match_packages(origin: Origin, tmp_path: Path) -> None:
    from pkgcache_suite.stick.datastore import Datastore

    repo = origin.root / "debian"
    deb = build_deb(repo, "alpha", "1.0")
    write_indexes(repo, by_hash=True)
    ds, _ = Datastore.open(tmp_path / "ds")
    url = f"{origin.base}/debian/dists/stable/InRelease"
    ds.write_wanted([{"url": url, "first_seen": 0, "count": 1}], {"deb_arch": ["amd64"]})
    assert fetch(ds.root, "--arch", _arch()).returncode == 0
    deb.write_bytes(b"republished with other content")  # the mirror now serves a different file
    deb_url = f"{origin.base}/debian/{deb.relative_to(repo)}"
    ds.write_wanted([{"url": deb_url, "first_seen": 0, "count": 1}], {})
    r = fetch(ds.root)
    assert r.returncode == 1 and "checksum mismatch" in r.stdout
    assert deb_url not in json.loads((ds.root / "manifest.json").read_text())["files"]


def _arch() -> str:
    from support.debrepo import ARCH

    return ARCH


def test_real_udev_source_starts_and_stops() -> None:
    """The pyudev side of the seam: enumerate block devices and run the netlink monitor thread."""
    import asyncio

    from pkgcache_suite.stick.usb import UdevSource

    async def run() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        src = UdevSource()
        src.start(asyncio.get_running_loop(), lambda action, dev, props: seen.append((action, dev)))
        await asyncio.sleep(0.3)
        src.stop()
        return seen

    seen = asyncio.run(run())
    assert all(action == "add" for action, _ in seen)  # only USB block devices already present, if any


def test_offline_miss_of_a_remapped_repository_is_imported_into_its_namespace(origin: Origin, start_proxy,
                                                                            tmp_path: Path) -> None:
    """The wanted URL names the target mirror; the import must file it where the repository's clients look."""
    body = b"remapped package"
    origin.put(DEB, body)
    conf = tmp_path / "acng.conf"
    conf.write_text(f"Remap-debrep: http://mirror-a.example/debian http://mirror-b.example/debian ; "
                    f"{origin.base}/debian\n")
    ds = tmp_path / "ds"
    proxy = _offline_proxy(start_proxy, ds, "--set", f"pkgcache_conf={conf}")
    with proxy.client() as c:
        assert c.get("http://mirror-a.example" + DEB).status_code == 404
    wait_for(lambda: wanted_urls(ds) == [origin.base + DEB], what="the target URL in the wanted list")
    assert fetch(ds).returncode == 0
    wait_for(lambda: wanted_urls(ds) == [], timeout=20, what="the import")
    with proxy.client() as c:
        for mirror in ("http://mirror-a.example", "http://mirror-b.example"):
            r = c.get(mirror + DEB)
            assert r.status_code == 200 and r.content == body and r.headers["x-cache"] == "HIT"
    assert (proxy.cache_dir / "_repo_debrep" / DEB.split("/debian/", 1)[1]).is_file()


def test_the_stick_is_never_behind(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """Pulled out the moment the client exits, the stick already carries every miss the client met; the log
    then says it is safe to remove."""
    stick = tmp_path / "stick"
    proxy = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={stick}")
    urls = [f"{origin.base}/debian/pool/main/s/s{i}/s{i}_1_all.deb" for i in range(15)]
    for url in urls:  # a client run: one request after another, then the client exits
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy.url, url],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "404"
    on_stick = json.loads((stick / "wanted.json").read_text())  # read at once: the stick is pulled out now
    assert {w["url"] for w in on_stick["wanted"]} == set(urls)
    wait_for(lambda: "safe to remove" in proxy.log_text(), timeout=10, what="the log to say the stick may go")
    import httpx

    page = httpx.get(f"{proxy.url}/", trust_env=False).text  # and the page
    assert "15 URLs in the wanted list; the datastore is up to date: safe to remove" in page


def test_each_cache_has_its_own_default_datastore(origin: Origin, start_proxy, tmp_path: Path) -> None:
    a = start_proxy("--set", "pkgcache_offline=on", "--set", "pkgcache_datastore=", cache_dir=tmp_path / "a")
    b = start_proxy("--set", "pkgcache_offline=on", "--set", "pkgcache_datastore=", cache_dir=tmp_path / "b")
    for proxy, name in ((a, "one"), (b, "two")):
        with proxy.client() as c:
            assert c.get(f"{origin.base}/debian/pool/main/{name}_1_all.deb").status_code == 404
    for root, name in ((tmp_path / "a", "one"), (tmp_path / "b", "two")):
        listed = json.loads((root / ".pkgcache" / "datastore" / "wanted.json").read_text())["wanted"]
        assert [w["url"] for w in listed] == [f"{origin.base}/debian/pool/main/{name}_1_all.deb"]
