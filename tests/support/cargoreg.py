"""A cargo sparse registry built by the tests: config.json, one index file per crate, .crate archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from pkgcache_suite.indexes.cargo import index_path  # cargo's own layout


def crate(name: str, version: str, body: str = "pub fn f() -> u32 { 1 }\n", deps: list[str] | None = None) -> bytes:
    needs = "".join(f'{d} = "*"\n' for d in deps or [])
    files = {f"{name}-{version}/Cargo.toml": f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
                                              f"[dependencies]\n{needs}",
             f"{name}-{version}/src/lib.rs": body}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def registry(base_url: str, crates: dict[str, str], deps: dict[str, list[str]] | None = None,
             lie: set[str] | None = None) -> dict[str, bytes]:
    """{path under the origin: bytes} for a registry at base_url + "/index/" with crates {name: version}, each
    depending on deps[name] (any version) and listed with a wrong cksum when named in lie."""
    out = {"index/config.json": json.dumps({"dl": base_url + "/crates/{crate}-{version}.crate"}).encode()}
    for name, version in crates.items():
        needs = (deps or {}).get(name, [])
        body = crate(name, version, deps=needs)
        out[f"crates/{name}-{version}.crate"] = body
        cksum = hashlib.sha256(body + (b"!" if name in (lie or set()) else b"")).hexdigest()
        line = {"name": name, "vers": version, "cksum": cksum, "features": {}, "yanked": False,
                "deps": [{"name": d, "req": "*", "features": [], "optional": False, "default_features": True,
                          "target": None, "kind": "normal"} for d in needs]}
        # an older, yanked version first: fetch and cargo both take the newest one that is not yanked
        old = {**line, "vers": "0.0.1", "yanked": True, "deps": []}
        out["index/" + index_path(name)] = (json.dumps(old) + "\n" + json.dumps(line) + "\n").encode()
    return out
