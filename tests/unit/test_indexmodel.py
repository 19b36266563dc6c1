"""The index model on hand-made RPM metadata, and the "limited" report for formats it does not model."""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

from pkgcache_suite.maintenance.model import build_model
from pkgcache_suite.maintenance.tasks import expire
from pkgcache_suite.storage import CacheStore, Entry

ROOT = "mirror.example/fedora/40/x86_64"


def _put(store: CacheStore, key: str, data: bytes, kind: str = "immutable") -> str:
    path = store.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    store.put_entry(Entry(key=key, url="http://" + key, kind=kind, length=len(data), sha256=sha, fetched=time.time()))
    return sha


def test_rpm_repository_model_and_expire(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    rpm = b"rpm payload" * 100
    rpm_sha = _put(store, f"{ROOT}/Packages/b/bash-5.2-1.x86_64.rpm", rpm)
    _put(store, f"{ROOT}/Packages/o/old-1.0-1.x86_64.rpm", b"old")
    primary = f"""<?xml version="1.0"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>bash</name><checksum type="sha256" pkgid="YES">{rpm_sha}</checksum>
<size package="{len(rpm)}" installed="1" archive="1"/><location href="Packages/b/bash-5.2-1.x86_64.rpm"/></package>
</metadata>""".encode()
    pgz = gzip.compress(primary)
    psha = hashlib.sha256(pgz).hexdigest()
    _put(store, f"{ROOT}/repodata/{psha}-primary.xml.gz", pgz)
    repomd = f"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">
<checksum type="sha256">{psha}</checksum><location href="repodata/{psha}-primary.xml.gz"/>
<size>{len(pgz)}</size></data></repomd>""".encode()
    _put(store, f"{ROOT}/repodata/repomd.xml", repomd, kind="volatile")
    _put(store, "mirror.example/archlinux/core/os/x86_64/broken.db", b"not a tarball", kind="volatile")

    model = build_model(store)
    root = model.roots[ROOT]
    assert root.family == "rpm" and not root.errors
    ref = root.refs[f"{ROOT}/Packages/b/bash-5.2-1.x86_64.rpm"]
    assert (ref.size, ref.sha256) == (len(rpm), rpm_sha)
    assert model.roots["mirror.example/archlinux/core/os/x86_64"].errors  # the broken .db

    res = expire(store, now_=True)
    assert res.deleted == [f"{ROOT}/Packages/o/old-1.0-1.x86_64.rpm"]
    assert store.lookup(f"{ROOT}/Packages/b/bash-5.2-1.x86_64.rpm") is not None
    assert "mirror.example/archlinux/core/os/x86_64" in res.refused_roots
    assert store.lookup("mirror.example/archlinux/core/os/x86_64/broken.db") is not None  # refused: kept
    store.close()


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_arch_and_alpine_models(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    arch = "mirror.example/archlinux/core/os/x86_64"
    pkg = b"zstd package" * 50
    sha = _put(store, f"{arch}/bash-5.2-1-x86_64.pkg.tar.zst", pkg)
    _put(store, f"{arch}/gone-1-1-x86_64.pkg.tar.zst", b"gone")
    desc = (f"%FILENAME%\nbash-5.2-1-x86_64.pkg.tar.zst\n\n%NAME%\nbash\n\n%CSIZE%\n{len(pkg)}\n\n"
            f"%SHA256SUM%\n{sha}\n\n").encode()
    _put(store, f"{arch}/core.db", _tar({"bash-5.2-1/desc": desc}), kind="volatile")
    alpine = "mirror.example/alpine/v3.20/main/x86_64"
    apk = b"apk payload"
    _put(store, f"{alpine}/busybox-1.36.1-r29.apk", apk)
    _put(store, f"{alpine}/old-1.0-r0.apk", b"old")
    index = f"C:Q1abc=\nP:busybox\nV:1.36.1-r29\nS:{len(apk)}\n\n".encode()
    _put(store, f"{alpine}/APKINDEX.tar.gz", _tar({"APKINDEX": index}), kind="volatile")

    model = build_model(store)
    ref = model.roots[arch].refs[f"{arch}/bash-5.2-1-x86_64.pkg.tar.zst"]
    assert (ref.size, ref.sha256) == (len(pkg), sha)
    aref = model.roots[alpine].refs[f"{alpine}/busybox-1.36.1-r29.apk"]
    assert (aref.size, aref.sha256) == (len(apk), None)
    assert model.limited == [alpine]  # sizes only
    res = expire(store, now_=True)
    assert sorted(res.deleted) == [f"{alpine}/old-1.0-r0.apk", f"{arch}/gone-1-1-x86_64.pkg.tar.zst"]
    store.close()


def test_a_packages_index_that_does_not_parse_blocks_deletion(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    root = "mirror.example/debian"
    _put(store, f"{root}/pool/main/a/a_1_all.deb", b"deb")
    garbage = b"this is not a Packages index\nat all\n"
    sha = _put(store, f"{root}/dists/stable/main/binary-amd64/Packages", garbage, kind="volatile")
    release = f"Suite: stable\nSHA256:\n {sha} {len(garbage)} main/binary-amd64/Packages\n".encode()
    _put(store, f"{root}/dists/stable/Release", release, kind="volatile")
    model = build_model(store)
    assert any("cannot parse Packages index" in e for e in model.roots[root].errors)
    res = expire(store, now_=True)
    assert root in res.refused_roots and res.deleted == []
    assert store.lookup(f"{root}/pool/main/a/a_1_all.deb") is not None
    store.close()
