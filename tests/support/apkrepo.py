"""Alpine repositories built by the tests: v2 as Alpine 3.x mirrors publish it, and v3 made by apk itself.

v2: a package is its gzipped control tar (``.PKGINFO``, the tar cut before its
end blocks) followed by its gzipped data tar; ``APKINDEX.tar.gz`` holds the text
index whose ``C:`` is ``Q1`` and the base64 SHA-1 of the control segment.  v3:
``apk mkpkg`` and ``apk mkndx`` (apk-tools 3).  Unsigned unless sign_index() signs a v2 index as
abuild-sign does; clients run with ``--allow-untrusted``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from support.proxy import Proxy
from support.recipes import block
from support.rpmpac import exports

ARCH = "x86_64"
MTIME = 1700000000


def apk_binary() -> str:
    """The real apk (apk-tools 3): on PATH, as .ci/run puts it (it builds it when the machine has none)."""
    found = shutil.which("apk")
    assert found, "apk is not on PATH: run .ci/run, or ../shared/tools/build-apk.sh PREFIX and add PREFIX/bin"
    return found


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    files: dict[str, bytes]

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


def _segment(members: list[tuple[str, bytes | None, dict[str, str]]], cut: bool) -> bytes:
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for name, data, pax in members:
        info = tarfile.TarInfo(name)
        info.mtime, info.pax_headers = MTIME, pax
        if data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    end = tar.offset
    tar.close()
    raw = buf.getvalue()
    return gzip.compress(raw[:end] if cut else raw, mtime=0)


def v2_package(p: Package) -> tuple[bytes, bytes]:
    """(the .apk file, its control segment)."""
    dirs = sorted({"/".join(path.split("/")[:i]) for path in p.files for i in range(1, path.count("/") + 1)})
    data = _segment([(d, None, {}) for d in dirs]
                    + [(path, body, {"APK-TOOLS.checksum.SHA1": hashlib.sha1(body).hexdigest()})
                       for path, body in p.files.items()], cut=False)
    info = (f"pkgname = {p.name}\npkgver = {p.version}\npkgdesc = {p.name}\nurl = http://mirror.example/\n"
            f"builddate = {MTIME}\nsize = {sum(len(b) for b in p.files.values())}\narch = {ARCH}\nlicense = MIT\n"
            f"origin = {p.name}\ndatahash = {hashlib.sha256(data).hexdigest()}\n").encode()
    control = _segment([(".PKGINFO", info, {})], cut=True)
    return control + data, control


def v2_repository(packages: list[Package]) -> dict[str, bytes]:
    """{file name: bytes} of one architecture's folder: the packages and APKINDEX.tar.gz."""
    out: dict[str, bytes] = {}
    text = b""
    for p in packages:
        apk, control = v2_package(p)
        out[p.filename] = apk
        checksum = "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
        text += (f"C:{checksum}\nP:{p.name}\nV:{p.version}\nA:{ARCH}\nS:{len(apk)}\n"
                 f"I:{sum(len(b) for b in p.files.values())}\nT:{p.name}\nU:http://mirror.example/\nL:MIT\n"
                 f"o:{p.name}\nt:{MTIME}\n\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in (("DESCRIPTION", b"pkgcache test repository"), ("APKINDEX", text)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(body), MTIME
            tar.addfile(info, io.BytesIO(body))
    out["APKINDEX.tar.gz"] = buf.getvalue()
    return out


def v3_repository(packages: list[Package], work: Path, sign_key: Path | None = None) -> dict[str, bytes]:
    """The same, in apk-tools 3's own formats, made by apk mkpkg and apk mkndx (which signs the index with
    sign_key, a private key's PEM file, when given)."""
    folder = work / ARCH
    folder.mkdir(parents=True)
    for p in packages:
        (folder / p.filename).write_bytes(v3_package(p, work / "trees"))
    signing = ["--sign-key", str(sign_key)] if sign_key else []
    subprocess.run([apk_binary(), "mkndx", "--allow-untrusted", *signing, "-o", str(folder / "APKINDEX.tar.gz"),
                    *(str(folder / p.filename) for p in packages)], check=True, capture_output=True)
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def v3_package(p: Package, work: Path) -> bytes:
    """A package in apk-tools 3's format, made by apk mkpkg."""
    tree = work / f"{p.name}-{len(list(work.glob('*'))) if work.exists() else 0}"
    for path, body in p.files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(body)
    out = tree.with_suffix(".apk")
    subprocess.run([apk_binary(), "mkpkg", "-I", f"name:{p.name}", "-I", f"version:{p.version}", "-I",
                    f"arch:{ARCH}", "-I", f"description:{p.name}", "-I", "license:MIT", "-I", f"origin:{p.name}",
                    "-F", str(tree), "-o", str(out)], check=True, capture_output=True)
    return out.read_bytes()


def signing_key(folder: Path, name: str) -> tuple[rsa.RSAPrivateKey, Path]:
    """An RSA key as Alpine's abuild-keygen makes one: (the private key, folder/<name>, its public PEM); the
    private key's PEM is written beside folder, as <folder>.key (what apk mkndx --sign-key reads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder.mkdir(parents=True, exist_ok=True)
    pub = folder / name
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    (folder.parent / f"{folder.name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return key, pub


def sign_index(index: bytes, key: rsa.RSAPrivateKey, name: str) -> bytes:
    """An APKINDEX.tar.gz signed as abuild-sign does: a gzipped tar segment (cut before its end blocks) with
    .SIGN.RSA256.<name>, the signature over SHA-256 of the index's bytes, put before them."""
    signature = key.sign(index, padding.PKCS1v15(), hashes.SHA256())
    return _segment([(f".SIGN.RSA256.{name}", signature, {})], cut=True) + index


def apk_add(proxy: Proxy, repository: str, root: Path, *packages: str) -> subprocess.CompletedProcess[str]:
    """apk with the proxy the recipe's export line names, into a fresh root, without apk's own cache."""
    root.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(exports(block("alpine.md", 0, proxy.url.removeprefix("http://"))))
    return subprocess.run([apk_binary(), "--root", str(root), "--initdb", "--allow-untrusted", "--arch", ARCH,
                           "--no-cache", "--repositories-file", "/dev/null", "-X", repository, "add", *packages],
                          capture_output=True, text=True, timeout=120, env=env)
