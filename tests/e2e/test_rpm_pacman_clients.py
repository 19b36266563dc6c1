"""dnf, zypper and pacman for real, configured as their recipes say: cold, warm (their own caches cleared:
no package file goes upstream twice) and offline in auto and on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from support.origin import Origin
from support.recipes import block
from support.roundtrip import round_trip
from support.rpmpac import build_pacman_repo, build_rpm_repo, exports


def _dnf(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "repos").mkdir(parents=True)
    baseurl = next(ln for ln in block("fedora.md", 1, mirror=f"127.0.0.1:{origin.port}").splitlines()
                   if ln.startswith("baseurl="))  # the recipe's line, as written
    (work / "repos" / "demo.repo").write_text(f"[demo]\nname=demo\n{baseurl}\ngpgcheck=0\nrepo_gpgcheck=0\n"
                                              "enabled=1\n")
    proxy_line = block("fedora.md", 0, proxy.url.removeprefix("http://")).strip()  # the recipe's [main] line
    (work / "dnf.conf").write_text(f"[main]\nreposdir={work / 'repos'}\ncachedir={work / 'cache'}\n{proxy_line}\n")
    return subprocess.run(["dnf", "-y", "--config", str(work / "dnf.conf"), "--installroot", str(work / "root"),
                           "--releasever", "1", "--forcearch", "x86_64", "--setopt", f"reposdir={work / 'repos'}", "install",
                           "--downloadonly", "--downloaddir", str(work / "out"), "demo"],
                          capture_output=True, text=True, timeout=300)


def _zypper(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, **exports(block("opensuse.md", 0, proxy.url.removeprefix("http://")))}
    base = ["zypper", "--root", str(work / "root"), "-n"]
    subprocess.run(base + ["ar", "-G", "-f", f"{origin.base}/rpm/", "demo"], env=env, check=True, capture_output=True)
    r = subprocess.run(base + ["--gpg-auto-import-keys", "refresh"], env=env, capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        return r
    return subprocess.run(base + ["download", "demo"], env=env, capture_output=True, text=True, timeout=300)


def _pacman(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(work, ignore_errors=True)
    for d in ("db", "cache", "root"):
        (work / d).mkdir(parents=True)
    mirror = block("arch.md", 1, mirror=f"127.0.0.1:{origin.port}").strip().replace("/archlinux/", "/arch/")
    (work / "pacman.conf").write_text(f"[options]\nArchitecture = x86_64\nSigLevel = Never\n[demo]\n{mirror}\n")
    env = {**os.environ, **exports(block("arch.md", 0, proxy.url.removeprefix("http://")))}
    return subprocess.run(["pacman", "--config", str(work / "pacman.conf"), "--root", str(work / "root"),
                           "--dbpath", str(work / "db"), "--cachedir", str(work / "cache"), "--noconfirm",
                           "-Syw", "demo"], env=env, capture_output=True, text=True, timeout=300)


FEDORA = "fedora/linux/releases/1/Everything/x86_64/os"  # the recipe's baseurl for $releasever 1 on x86_64


def test_dnf(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_rpm_repo(origin.root, where=FEDORA)
    round_trip(_dnf, package, origin, start_proxy, tmp_path)


def test_zypper(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_rpm_repo(origin.root)
    round_trip(_zypper, package, origin, start_proxy, tmp_path)


def test_pacman(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_pacman_repo(origin.root)
    round_trip(_pacman, package, origin, start_proxy, tmp_path)
