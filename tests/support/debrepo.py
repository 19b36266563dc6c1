"""Build a small, real Debian repository (dpkg-deb + apt-ftparchive) and drive apt-get against it.

Used by the apt, offline and maintenance tests, so it builds the same layout an archive mirror has:
pool/ with .debs and dists/<suite>/ with Release, InRelease and compressed
Packages indexes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() or "amd64"


def build_deb(out_dir: Path, name: str, version: str, payload_size: int = 20_000, depends: str = "",
              fields: dict[str, str] | None = None, component: str = "main", arch: str = "all") -> Path:
    """A minimal binary package with some payload so transfers are non-trivial; fields adds control fields
    (Pre-Depends, Provides, ...)."""
    root = out_dir / f"build-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "usr/share" / name).mkdir(parents=True, exist_ok=True)
    (root / "usr/share" / name / "data").write_bytes(os.urandom(payload_size))
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <test@example.invalid>\n"
        f"Description: test package {name}\n"
    )
    if depends:
        control += f"Depends: {depends}\n"
    for k, v in (fields or {}).items():
        control += f"{k}: {v}\n"
    (root / "DEBIAN" / "control").write_text(control)
    letter = name[0]
    pool = out_dir / "pool" / component / letter / name
    pool.mkdir(parents=True, exist_ok=True)
    deb = pool / f"{name}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(root)
    return deb


def write_indexes(repo: Path, suite: str = "stable", by_hash: bool = False, components: tuple[str, ...] = ("main",),
                  archs: tuple[str, ...] = (ARCH,), translations: bool = False) -> None:
    """(Re)generate Packages{,.gz,.xz}, Release and InRelease for the pool as it is now.

    With by_hash, the indexes are also published under by-hash/SHA256/ and the
    Release says Acquire-By-Hash: yes, as the big archives do.  Each component's
    Packages lists pool/<component>'s packages of its architecture and the
    Architecture: all ones.  translations adds an empty i18n/Translation-en per
    component (only its presence counts).
    """
    dirs = []
    for comp in components:
        scan = repo / "pool" / comp
        for arch in archs:  # an architecture's index lists its packages and the Architecture: all ones
            pk = subprocess.run(["apt-ftparchive", "--arch", arch, "packages", f"pool/{comp}"], cwd=repo, check=True,
                                capture_output=True).stdout if scan.is_dir() else b""
            dirs.append((repo / "dists" / suite / comp / f"binary-{arch}", "Packages", pk))
        if translations:
            dirs.append((repo / "dists" / suite / comp / "i18n", "Translation-en", b""))
    for index_dir, name, data in dirs:
        index_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(index_dir / "by-hash", ignore_errors=True)
        (index_dir / name).write_bytes(data)
        subprocess.run(["gzip", "-9fk", str(index_dir / name)], check=True)
        subprocess.run(["xz", "-fk", str(index_dir / name)], check=True)
    # like Debian's archives, MD5Sum and SHA256 only: apt asks by-hash for its strongest listed hash
    no_sha512 = ["-o", "APT::FTPArchive::SHA512=false", "-o", "APT::FTPArchive::Release::SHA512=false"]
    rel = subprocess.run(
        ["apt-ftparchive", *(no_sha512 if by_hash else []), "-o", f"APT::FTPArchive::Release::Suite={suite}",
         "-o", f"APT::FTPArchive::Release::Codename={suite}",
         "-o", f"APT::FTPArchive::Release::Components={' '.join(components)}",
         "-o", f"APT::FTPArchive::Release::Architectures={' '.join(archs)}",
         "release", f"dists/{suite}"],
        cwd=repo, check=True, capture_output=True,
    ).stdout
    if by_hash:
        rel = b"Acquire-By-Hash: yes\n" + rel
        for index_dir, name, _ in dirs:
            hashed = index_dir / "by-hash" / "SHA256"
            hashed.mkdir(parents=True, exist_ok=True)
            for variant in (name, name + ".gz", name + ".xz"):
                data = (index_dir / variant).read_bytes()
                (hashed / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (repo / "dists" / suite / "Release").write_bytes(rel)
    # Signed like a real archive (apt falls back to Release + Release.gpg on an unsigned InRelease);
    # the clients use [trusted=yes], so the throwaway key needs no keyring on their side.
    _sign(repo / "dists" / suite)


_GNUPG_HOME: Path | None = None


def _sign(suite_dir: Path) -> None:
    global _GNUPG_HOME
    if _GNUPG_HOME is None:
        # a short path: gpg-agent's socket lives in GNUPGHOME and socket paths are limited to ~100 bytes
        _GNUPG_HOME = Path(tempfile.mkdtemp(prefix="pkgc-gpg-"))
        env = {**os.environ, "GNUPGHOME": str(_GNUPG_HOME)}
        subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "repo@example.invalid",
                        "default", "default", "never"], env=env, check=True, capture_output=True)
    env = {**os.environ, "GNUPGHOME": str(_GNUPG_HOME)}
    rel = suite_dir / "Release"
    subprocess.run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(suite_dir / "InRelease"), str(rel)],
                   env=env, check=True, capture_output=True)
    subprocess.run(["gpg", "--batch", "--yes", "-abs", "-o", str(suite_dir / "Release.gpg"), str(rel)],
                   env=env, check=True, capture_output=True)


@dataclass
class AptClient:
    """apt-get with a private state dir, talking to one repository URL, optionally through a proxy."""

    base: Path
    repo_url: str
    proxy: str | None = None
    suite: str = "stable"
    conf: str | None = None  # apt configuration (a recipe's, as written) for apt.conf.d; sets the proxy itself
    foreign: tuple[str, ...] = ()  # dpkg's foreign architectures (Multi-Arch)

    def __post_init__(self) -> None:
        for d in ("etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d", "state/lists/partial",
                  "cache/archives/partial", "log"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        (self.base / "state" / "status").write_text("")
        if self.conf is not None:
            (self.base / "etc" / "apt.conf").write_text(self.conf + "\n")
        (self.base / "etc" / "sources.list").write_text(
            f"deb [trusted=yes] {self.repo_url} {self.suite} main\n"
        )

    def options(self) -> list[str]:
        b = self.base
        opts = {
            "Dir::Etc": f"{b}/etc",
            "Dir::Etc::sourcelist": f"{b}/etc/sources.list",
            "Dir::Etc::sourceparts": f"{b}/etc/sources.list.d",
            "Dir::Etc::preferencesparts": f"{b}/etc/preferences.d",
            "Dir::Etc::parts": f"{b}/etc/apt.conf.d",
            "Dir::State": f"{b}/state",
            "Dir::State::status": f"{b}/state/status",
            "Dir::Cache": f"{b}/cache",
            "Dir::Log": f"{b}/log",
            "APT::Architecture": ARCH,
            "APT::Architectures": ARCH,
            "Debug::NoLocking": "1",
            "APT::Sandbox::User": "root",
            "Acquire::Languages": "none",
            "Acquire::Retries": "0",
            "Acquire::http::Timeout": "20",
        }
        if self.conf is None:
            opts["Acquire::http::Proxy"] = self.proxy or "DIRECT"
        if self.foreign:
            del opts["APT::Architectures"]
        out: list[str] = [f"-oAPT::Architectures::={a}" for a in (ARCH, *self.foreign) if self.foreign]
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        return out

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        if self.conf is not None:
            env["APT_CONFIG"] = str(self.base / "etc" / "apt.conf")  # read before anything else
        r = subprocess.run(["apt-get", "-q", "-y", *self.options(), *args], capture_output=True, text=True,
                           env=env, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError(f"apt-get {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def archives(self) -> list[Path]:
        return sorted((self.base / "cache" / "archives").glob("*.deb"))

    def clean(self) -> None:
        for p in self.archives():
            p.unlink()


def export_signing_key(path: Path) -> Path:
    """The public key the test archives are signed with, as a binary keyring file (what gpgv reads)."""
    assert _GNUPG_HOME is not None, "no archive has been signed yet"
    env = {**os.environ, "GNUPGHOME": str(_GNUPG_HOME)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(subprocess.run(["gpg", "--batch", "--export"], env=env, check=True,
                                    capture_output=True).stdout)
    return path


def sign_with_another_key(suite_dir: Path, home: Path) -> None:
    """Re-sign a suite's InRelease and Release.gpg with a key of its own (a mirror that signs with the wrong
    key)."""
    env = _other_key(home)
    subprocess.run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(suite_dir / "InRelease"),
                    str(suite_dir / "Release")], env=env, check=True, capture_output=True)
    subprocess.run(["gpg", "--batch", "--yes", "-abs", "-o", str(suite_dir / "Release.gpg"),
                    str(suite_dir / "Release")], env=env, check=True, capture_output=True)


def _other_key(home: Path | None) -> dict[str, str]:
    """gpg's environment with the archive's key (home None) or, in home, a key of its own."""
    if home is None:
        if _GNUPG_HOME is None:
            with tempfile.TemporaryDirectory() as d:  # the archive's key is made with its first suite
                (Path(d) / "Release").write_text("")
                _sign(Path(d))
        return {**os.environ, "GNUPGHOME": str(_GNUPG_HOME)}
    env = {**os.environ, "GNUPGHOME": str(home)}
    if not home.is_dir():
        home.mkdir(parents=True)
        subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "mallory@example.invalid",
                        "default", "default", "never"], env=env, check=True, capture_output=True)
    return env


def detach_sign(path: Path, suffix: str, home: Path | None = None) -> Path:
    """A detached signature beside path (".asc": armored, ".sig": binary) by the archive's key, or by the key
    in home (a mirror that signs with the wrong key)."""
    out = path.with_name(path.name + suffix)
    armor = ["-a"] if suffix == ".asc" else []
    subprocess.run(["gpg", "--batch", "--yes", *armor, "--detach-sign", "-o", str(out), str(path)],
                   env=_other_key(home), check=True, capture_output=True)
    return out
