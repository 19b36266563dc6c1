"""cargo's sparse index and Alpine's APKINDEX as the checks on commit and `pkgcache fetch` read them."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from pkgcache_suite.indexes import alpine, cargo
from pkgcache_suite.indexes.filecheck import check_file
from pkgcache_suite.resolve.cargoclosure import CargoClosure
from support.apkrepo import Package, v2_package


@pytest.mark.parametrize("name, path", [("a", "1/a"), ("ab", "2/ab"), ("abc", "3/a/abc"), ("Serde", "se/rd/serde"),
                                        ("cargo-x", "ca/rg/cargo-x")])
def test_index_path_and_back(name: str, path: str) -> None:
    assert cargo.index_path(name) == path
    assert cargo.index_name(f"/index/{path}") == ("/index", name.lower())


@pytest.mark.parametrize("path", ["/index/3/b/abc", "/index/se/xx/serde", "/index/config.json", "/2/abc",
                                  "/docs/ab/cd/page.html"])
def test_paths_not_laid_out_as_an_index_file(path: str) -> None:
    assert cargo.index_name(path) is None


@pytest.mark.parametrize("dl, url", [
    ("http://m.example/crates/{crate}-{version}.crate", "http://m.example/crates/serde-1.0.1.crate"),
    ("http://m.example/api/v1/crates", "http://m.example/api/v1/crates/serde/1.0.1/download"),
    ("http://m.example/{prefix}/{crate}/{sha256-checksum}", "http://m.example/se/rd/serde/" + "a" * 64),
])
def test_download_url(dl: str, url: str) -> None:
    assert cargo.download_url(dl, cargo.Version("serde", "1.0.1", "a" * 64, False, ())) == url


def _lines(*objs: object) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(o).encode() + b"\n" for o in objs) + b"not json\n")


@pytest.mark.parametrize("listed, newest", [
    ([("0.9.0", False), ("0.10.0", False), ("0.10.1", True)], "0.10.0"),  # numbers, not strings; yanked skipped
    ([("1.0.0-rc1", False), ("0.9.0", False)], "0.9.0"),  # a pre-release only when nothing else is there
    ([("1.0.0-rc1", False)], "1.0.0-rc1"),
    ([("1.0.0", True)], "1.0.0"),
])
def test_newest_version(listed: list[tuple[str, bool]], newest: str) -> None:
    got = cargo.newest(list(cargo.versions(_lines(*({"name": "x", "vers": v, "yanked": y, "cksum": "0" * 64}
                                                    for v, y in listed)))))
    assert got is not None and got.vers == newest


def test_versions_keep_only_real_digests_and_deps() -> None:
    (v,) = cargo.versions(_lines({"name": "x", "vers": "1.0.0", "cksum": "XYZ", "deps": [
        {"name": "a", "kind": "dev"}, {"name": "b", "package": "real-b"}, {"name": "c", "registry": "other"}]}))
    assert v.cksum is None
    assert [(d.name, d.kind, d.other_registry) for d in v.deps] == [
        ("a", "dev", False), ("real-b", "normal", False), ("c", "normal", True)]


def test_closure_waits_for_config_then_follows_dependencies(tmp_path) -> None:
    index = tmp_path / "index"
    index.write_bytes(_lines({"name": "top", "vers": "1.0.0", "cksum": "1" * 64,
                              "deps": [{"name": "dep", "kind": "normal"}, {"name": "tool", "kind": "dev"}]}).read())
    config = tmp_path / "config"
    config.write_text(json.dumps({"dl": "http://m.example/c/{crate}-{version}.crate"}))
    c = CargoClosure()
    url = "http://m.example/index/3/t/top"
    c.asked(url, {"Accept": "text/plain"})
    c.asked("http://m.example/page/ab/cd/abcd", {"Accept": "text/html"})
    assert c.claims(url) and not c.claims("http://m.example/page/ab/cd/abcd")
    assert c.learn(url, index) == ["http://m.example/index/config.json"]
    assert c.learn("http://m.example/index/config.json", config) == [
        "http://m.example/c/top-1.0.0.crate", "http://m.example/index/3/d/dep"]
    assert c.problem("http://m.example/c/top-1.0.0.crate", "1" * 64) is None
    assert "mismatch" in (c.problem("http://m.example/c/top-1.0.0.crate", "2" * 64) or "")


def test_apk_control_checksum(tmp_path) -> None:
    apk, control = v2_package(Package("p", "1-r0", {"usr/x": b"y" * 100_000}))
    want = alpine.CHECK_PREFIX + __import__("base64").b64encode(__import__("hashlib").sha1(control).digest()).decode()
    signed = tmp_path / "signed.apk"
    signed.write_bytes(gzip.compress(b".SIGN.RSA.key.rsa.pub" + b"\0" * 500) + apk)
    assert check_file(str(signed), want) is None
    other = tmp_path / "other.apk"
    other.write_bytes(v2_package(Package("p", "1-r0", {"usr/x": b"z" * 100_000}))[0])
    assert "control checksum mismatch" in (check_file(str(other), want) or "")
    junk = tmp_path / "junk.apk"
    junk.write_bytes(b"<html>portal</html>")
    assert "not an Alpine v2 package" in (check_file(str(junk), want) or "")
    assert "unknown kind" in (check_file(str(junk), "md5:00") or "")


def test_apk_control_segment_that_inflates_without_end_is_refused(tmp_path) -> None:
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = c.compress(b"\0" * (64 << 20)) + c.flush()  # 64 MiB of nothing in about 64 KiB
    path = tmp_path / "bomb.apk"
    path.write_bytes(bomb)
    assert "inflates without end" in (check_file(str(path), alpine.CHECK_PREFIX + "x") or "")


@pytest.mark.parametrize("data", [
    b"", b"ADB", b"ADB.", b"ADB.indx", b"ADB.indx\x08\x00\x00\x00", b"ADB.pckg" + b"\0" * 40,
    b"ADBd" + b"\xff" * 40,  # no deflate stream
    b"ADBd" + __import__("zlib").compressobj(9, 8, -15).compress(b"XYZ.indx") + b"",  # inflates to no ADB file
    b"ADB.indx" + (0x10 + 4).to_bytes(4, "little") + b"\0" * 4 + (0xE0000FFF).to_bytes(4, "little") + b"\0" * 8,
])
def test_a_broken_v3_index_is_refused_cleanly(data: bytes) -> None:
    from pkgcache_suite.indexes import adb

    with pytest.raises(ValueError):
        list(adb.index_entries(io.BytesIO(data)))


def test_a_v3_index_that_inflates_without_end_is_refused() -> None:
    import zlib

    from pkgcache_suite.indexes import adb

    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b"ADBd" + c.compress(b"ADB.indx" + b"\0" * (300 << 20)) + c.flush()
    with pytest.raises(ValueError, match="larger than"):
        list(adb.index_entries(io.BytesIO(bomb)))
