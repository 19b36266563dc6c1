"""Tiny repositories for real clients, served by the test origin: a PEP 503/691 index with a wheel, and an
npm registry with one package document and its tarball."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile

from support.origin import Behaviour, Origin


def build_wheel(name: str = "demo", version: str = "1.0", value: int = 42) -> tuple[str, bytes]:
    """A pure-Python wheel pip can install: (file name, bytes)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = %d\n" % value,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pkgcache-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


def serve_pypi(origin: Origin, name: str = "demo", files_dir: str = "/files", value: int = 42,
               listed: bytes | None = None) -> str:
    """A simple index at /simple/ whose files live outside /packages/ (as dir2pi and devpi lay them out);
    /simple/NAME/ answers HTML or PEP 691 JSON by Accept.  Returns the wheel's path.  value: what the wheel
    holds (another value: the same name republished); listed: the bytes whose SHA-256 the page gives (default:
    the wheel's)."""
    fname, data = build_wheel(name, value=value)
    path = f"{files_dir}/{fname}"
    origin.put(path, data)
    sha = hashlib.sha256(listed if listed is not None else data).hexdigest()
    html = f'<!DOCTYPE html><html><body><a href="{path}#sha256={sha}">{fname}</a></body></html>\n'.encode()
    doc = {"meta": {"api-version": "1.0"}, "name": name,
           "files": [{"filename": fname, "url": path, "hashes": {"sha256": sha}}]}
    origin.behaviours[f"/simple/{name}/"] = Behaviour(negotiate={
        "application/vnd.pypi.simple.v1+json": (json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json"),
        "text/html": (html, "text/html"),
    })
    return path


def serve_npm(origin: Origin, name: str = "demo-pkg", version: str = "1.0.0", base: str | None = None,
              value: int = 42, listed: bytes | None = None) -> str:
    """A registry document at /NAME (full and abbreviated) and its tarball at /NAME/-/; returns the tarball path.
    base: the registry's URL as clients name it (default: the origin's); value: what the package exports
    (another value: the same version republished); listed: the bytes whose digests the document gives."""
    pkg = json.dumps({"name": name, "version": version, "main": "index.js"}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for fname, data in (("package/package.json", pkg), ("package/index.js", b"module.exports = %d;\n" % value)):
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tgz = buf.getvalue()
    path = f"/{name}/-/{name}-{version}.tgz"
    origin.put(path, tgz)
    vouched = listed if listed is not None else tgz
    dist = {"tarball": (base or origin.base) + path, "shasum": hashlib.sha1(vouched).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(vouched).digest()).decode()}
    full = {"name": name, "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version, "main": "index.js", "dist": dist}}}
    abbreviated = {"name": name, "dist-tags": {"latest": version},
                   "versions": {version: {"name": name, "version": version, "dist": dist}}}
    origin.behaviours[f"/{name}"] = Behaviour(negotiate={
        "application/vnd.npm.install-v1+json": (json.dumps(abbreviated).encode(), "application/vnd.npm.install-v1+json"),
        "application/json": (json.dumps(full).encode(), "application/json"),
    })
    return path
