"""Small RPM (createrepo_c) and pacman (repo-add) repositories the tests build and the origin serves."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from support.origin import Origin
from support.recipes import block

SPEC = """Name: {name}
Version: 1.0
Release: 1
Summary: pkgcache test package
License: MIT
BuildArch: noarch
%description
A package for tests.
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo hello > %{{buildroot}}/usr/share/{name}/hello
%files
/usr/share/{name}/hello
"""

PKGINFO = """pkgname = {name}
pkgbase = {name}
pkgver = 1.0-1
pkgdesc = pkgcache test package
builddate = 1700000000
packager = tests
size = 6
arch = any
license = MIT
"""


FEDORA = "fedora/linux/releases/1/Everything/x86_64/os"  # the recipe's baseurl for $releasever 1 on x86_64


def need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise AssertionError(f"missing {', '.join(missing)}: run .ci/run, which installs them")


def build_rpm_repo(root: Path, name: str = "demo", where: str = "rpm") -> str:
    """root/<where>/: one noarch RPM and its repodata; returns the RPM's path below root."""
    need("rpmbuild", "createrepo_c")
    top = root.parent / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(SPEC.format(name=name))
    subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)], check=True, capture_output=True)
    repo = root / where
    repo.mkdir(parents=True, exist_ok=True)
    rpm = next((top / "RPMS" / "noarch").glob(f"{name}-1.0-1.noarch.rpm"))
    shutil.copy(rpm, repo / rpm.name)
    subprocess.run(["createrepo_c", str(repo)], check=True, capture_output=True)
    return f"/{where}/{rpm.name}"


def build_pacman_repo(root: Path, name: str = "demo") -> str:
    """root/arch/demo/os/x86_64/: one package and its database; returns the package's path below root."""
    need("bsdtar", "repo-add")
    pkgroot = root.parent / "pkgroot"
    (pkgroot / "usr" / "share" / name).mkdir(parents=True, exist_ok=True)
    (pkgroot / "usr" / "share" / name / "hello").write_text("hello\n")
    (pkgroot / ".PKGINFO").write_text(PKGINFO.format(name=name))
    repo = root / "arch" / "demo" / "os" / "x86_64"
    repo.mkdir(parents=True, exist_ok=True)
    pkg = f"{name}-1.0-1-any.pkg.tar.gz"
    subprocess.run(["bsdtar", "-czf", str(repo / pkg), ".PKGINFO", "usr"], cwd=pkgroot, check=True)
    subprocess.run(["repo-add", "-q", "demo.db.tar.gz", pkg], cwd=repo, check=True, capture_output=True)
    return f"/arch/demo/os/x86_64/{pkg}"


def exports(text: str) -> dict[str, str]:
    """The environment a recipe's `export NAME=VALUE` lines set."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            for word in shlex.split(line[len("export "):]):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def build_rpms(repo: Path, packages: dict[str, dict[str, str]]) -> dict[str, Path]:
    """Several noarch RPMs with extra spec tags (Requires, Provides, ...) and their repodata, in repo."""
    need("rpmbuild", "createrepo_c")
    top = repo.parent / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    repo.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, tags in packages.items():
        spec = top / "SPECS" / f"{name}.spec"
        extra = "".join(f"{k}: {v}\n" for k, v in tags.items())
        spec.write_text(SPEC.format(name=name).replace("BuildArch: noarch\n", f"BuildArch: noarch\n{extra}"))
        subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)], check=True, capture_output=True)
        rpm = top / "RPMS" / "noarch" / f"{name}-1.0-1.noarch.rpm"
        shutil.copy(rpm, repo / rpm.name)
        out[name] = repo / rpm.name
    subprocess.run(["createrepo_c", str(repo)], check=True, capture_output=True)
    return out


def dnf_download(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    """dnf, configured as the Fedora recipe says, downloading demo from the repository at FEDORA."""
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


def zypper_download(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    """zypper, configured as the openSUSE recipe says, downloading demo from /rpm/."""
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


def pacman_download(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    """pacman, configured as the Arch recipe says, downloading demo from /arch/demo/."""
    shutil.rmtree(work, ignore_errors=True)
    for d in ("db", "cache", "root"):
        (work / d).mkdir(parents=True)
    mirror = block("arch.md", 1, mirror=f"127.0.0.1:{origin.port}").strip().replace("/archlinux/", "/arch/")
    (work / "pacman.conf").write_text(f"[options]\nArchitecture = x86_64\nSigLevel = Never\n[demo]\n{mirror}\n")
    env = {**os.environ, **exports(block("arch.md", 0, proxy.url.removeprefix("http://")))}
    return subprocess.run(["pacman", "--config", str(work / "pacman.conf"), "--root", str(work / "root"),
                           "--dbpath", str(work / "db"), "--cachedir", str(work / "cache"), "--noconfirm",
                           "-Syw", "demo"], env=env, capture_output=True, text=True, timeout=300)
