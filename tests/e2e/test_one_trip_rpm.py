"""Offline in one trip for dnf: a fresh offline dnf client states its wants with curl (its repositories are the
ones it was seen asking for, its rpmdb says what is installed); one `pkgcache fetch` brings the metadata and the
dependency closure (resolved by dnf's solver); back offline `dnf install` succeeds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pkgcache_suite.proxy.wantpage import rpm_one_liner
from support.onetrip import wanted_doc
from support.origin import Origin
from support.proxy import Proxy, wait_for
from support.rpmpac import build_rpms, need


def dnf(proxy: Proxy, origin: Origin, client: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (client / "repos").mkdir(parents=True, exist_ok=True)
    (client / "repos" / "demo.repo").write_text(f"[demo]\nname=demo\nbaseurl={origin.base}/rpm/\ngpgcheck=0\n"
                                                "repo_gpgcheck=0\nenabled=1\n")
    (client / "dnf.conf").write_text(f"[main]\nreposdir={client / 'repos'}\ncachedir={client / 'cache'}\n"
                                     f"proxy={proxy.url}\n")
    return subprocess.run(["dnf", "-y", "--config", str(client / "dnf.conf"), "--installroot", str(client / "root"),
                           "--releasever", "1", "--forcearch", "x86_64", "--setopt", f"reposdir={client / 'repos'}",
                           *args], capture_output=True, text=True, timeout=300)


def offline_rpm_client(origin: Origin, start_proxy, tmp_path: Path) -> tuple[dict[str, Path], Path, Proxy, Path,
                                                                             Path]:
    """hello needs a library, a virtual package (mta) and oldlib, which the client has: its rpmdb says so."""
    rpms = build_rpms(origin.root / "rpm", {
        "hello": {"Requires": "libgreet, mta, oldlib"}, "libgreet": {}, "tinymta": {"Provides": "mta"},
        "oldlib": {}, "unrelated": {}})
    ds = tmp_path / "stick"
    proxy = start_proxy("--set", f"pkgcache_datastore={ds}", "--set", "pkgcache_offline=on")
    client = tmp_path / "client"
    subprocess.run(["rpm", "--root", str(client / "root"), "--initdb"], check=True, capture_output=True)
    subprocess.run(["rpm", "--root", str(client / "root"), "-i", "--justdb", "--nodeps", "--noscripts",
                    str(rpms["oldlib"])], check=True, capture_output=True)
    (rpmdb,) = (client / "root").rglob("rpmdb.sqlite")
    return rpms, ds, proxy, client, rpmdb


def test_fresh_offline_dnf_client_installs_after_one_fetch(origin: Origin, start_proxy, tmp_path: Path) -> None:
    need("dnf", "rpm")
    rpms, ds, proxy, client, rpmdb = offline_rpm_client(origin, start_proxy, tmp_path)

    # offline: dnf cannot load its repository; then the documented line, with this client's rpmdb
    assert dnf(proxy, origin, client, "makecache").returncode != 0
    line = rpm_one_liner(proxy.url).replace("/var/lib/rpm/rpmdb.sqlite", str(rpmdb)).replace(
        "$(uname -m)", "x86_64")
    r = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60)
    assert "recorded request" in r.stdout and "with rpmdb" in r.stdout, r.stdout + r.stderr
    (stated,) = wanted_doc(ds)["requests"]
    assert stated["format"] == "rpm" and stated["repos"] == [f"{origin.base}/rpm/"]

    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "request " in r.stdout and "3 package files resolved" in r.stdout, r.stdout
    fetched = json.loads((ds / "manifest.json").read_text())["files"]
    assert {u.rsplit("/", 1)[-1] for u in fetched if u.endswith(".rpm")} == {
        rpms[n].name for n in ("hello", "libgreet", "tinymta")}

    wait_for(lambda: not wanted_doc(ds).get("requests") and not wanted_doc(ds).get("wanted"), timeout=30,
             what="the import of the trip")
    r = dnf(proxy, origin, client, "install", "--downloadonly", "--downloaddir", str(tmp_path / "out"), "hello")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(rpms[n].name for n in ("hello", "libgreet", "tinymta"))
    assert wanted_doc(ds).get("wanted") == []


def zypper(proxy: Proxy, origin: Origin, client: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "http_proxy": proxy.url, "https_proxy": proxy.url}
    return subprocess.run(["zypper", "--root", str(client / "root"), "-n", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_fresh_offline_zypper_client_installs_after_one_fetch(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """The same statement from a zypper client: dnf's solver on the connected side, zypper's back offline."""
    need("zypper", "rpm")
    rpms, ds, proxy, client, rpmdb = offline_rpm_client(origin, start_proxy, tmp_path)
    assert zypper(proxy, origin, client, "ar", "-G", "-f", f"{origin.base}/rpm/", "demo").returncode == 0
    assert zypper(proxy, origin, client, "refresh").returncode != 0
    # where pkgcache is installed on the offline machine: `pkgcache want --rpm`
    r = subprocess.run(["pkgcache", "want", "--rpm", "--proxy", proxy.url, "--status", str(rpmdb), "--arch",
                        "x86_64", "hello"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "recorded request" in r.stdout and "with rpmdb" in r.stdout, r.stdout + r.stderr

    r = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "3 package files resolved" in r.stdout, r.stdout + r.stderr

    wait_for(lambda: not wanted_doc(ds).get("requests") and not wanted_doc(ds).get("wanted"), timeout=30,
             what="the import of the trip")
    r = zypper(proxy, origin, client, "refresh")
    assert r.returncode == 0, r.stdout + r.stderr
    r = zypper(proxy, origin, client, "install", "--download-only", "hello")
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted(p.name for p in (client / "root").rglob("*.rpm"))
    assert got == sorted(rpms[n].name for n in ("hello", "libgreet", "tinymta"))
    assert [w["url"] for w in wanted_doc(ds).get("wanted")] == []
