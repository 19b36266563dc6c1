"""A cargo sparse registry built by the tests: config.json, one index file per crate, .crate archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def index_path(name: str) -> str:
    """Where cargo looks for a crate's index file under the registry's index URL."""
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def crate(name: str, version: str, body: str = "pub fn f() -> u32 { 1 }\n") -> bytes:
    files = {f"{name}-{version}/Cargo.toml": f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n',
             f"{name}-{version}/src/lib.rs": body}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def registry(base_url: str, crates: dict[str, str]) -> dict[str, bytes]:
    """{path under the origin: bytes} for a registry at base_url + "/index/" with crates {name: version}."""
    out = {"index/config.json": json.dumps({"dl": base_url + "/crates/{crate}-{version}.crate"}).encode()}
    for name, version in crates.items():
        body = crate(name, version)
        out[f"crates/{name}-{version}.crate"] = body
        line = {"name": name, "vers": version, "deps": [], "cksum": hashlib.sha256(body).hexdigest(),
                "features": {}, "yanked": False}
        out["index/" + index_path(name)] = (json.dumps(line) + "\n").encode()
    return out
