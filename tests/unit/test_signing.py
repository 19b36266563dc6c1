"""Which signed index must verify against what (pure), and gpgv's verdict on keyrings binary and armored, on
clearsigned files and detached signatures."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from pkgcache_suite.signing import apksign, gpgv
from pkgcache_suite.signing.policy import (
    SYSTEM_KEYRINGS, detached_suffix, is_signed_index, keyring_dirs, may_need_check, origin, signed_by_file,
)

DEBIAN = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nSuite: stable\n"
OTHER = b"Origin: Example\nSuite: stable\n"


@pytest.mark.parametrize("configured, new, cached, dirs", [
    ((Path("/k"),), OTHER, None, (Path("/k"),)),  # the admin's keyrings vouch for every suite
    ((), DEBIAN, None, (SYSTEM_KEYRINGS,)),  # Debian's archive: the system's keys
    ((), b"Origin: Ubuntu\n", None, (SYSTEM_KEYRINGS,)),
    ((), OTHER, DEBIAN, (SYSTEM_KEYRINGS,)),  # taking the Origin line out is no way around the check
    ((), OTHER, OTHER, ()),  # nothing vouches for a third-party suite: not checked
    ((), b"", None, ()),
])
def test_which_keyrings_vouch(configured, new, cached, dirs) -> None:
    assert keyring_dirs(configured, new, cached) == dirs


REPOMD = "m.example/fedora/repodata/repomd.xml"


@pytest.mark.parametrize("key, configured, repo, dirs", [
    (REPOMD, (), None, ()),  # an RPM repository is checked where a key is given
    (REPOMD, (Path("/k"),), None, (Path("/k"),)),
    (REPOMD, (Path("/k"),), (Path("/own"),), (Path("/own"),)),  # its Remap line's keyring= wins
    ("m.example/debian/dists/stable/InRelease", (Path("/k"),), (), ()),  # keyring=none: not checked
    ("m.example/arch/core/os/x86_64/core.db", (), None, ()),
    ("m.example/debian/dists/stable/Release", (), None, (SYSTEM_KEYRINGS,)),  # DEBIAN names its Origin
])
def test_which_keyrings_vouch_by_repository(key, configured, repo, dirs) -> None:
    assert keyring_dirs(configured, DEBIAN, None, key, repo) == dirs


@pytest.mark.parametrize("key, configured, repo, held", [
    ("m.example/debian/dists/stable/InRelease", (), None, True),  # its Origin is read once it is here
    (REPOMD, (), None, False),
    (REPOMD, (Path("/k"),), None, True),
    (REPOMD, (), (Path("/own"),), True),
    ("m.example/debian/dists/stable/InRelease", (Path("/k"),), (), False),
])
def test_which_signed_indexes_are_held(key, configured, repo, held) -> None:
    assert may_need_check(key, configured, repo) is held


@pytest.mark.parametrize("key, signed", [("m.example/debian/dists/stable/InRelease", True),
                                         ("m.example/debian/dists/stable/updates/InRelease", True),
                                         ("m.example/debian/dists/stable/Release", True),
                                         ("m.example/debian/dists/stable/Release.gpg", False),
                                         (REPOMD, True),
                                         ("m.example/arch/core/os/x86_64/core.db", True),
                                         ("m.example/arch/core/os/x86_64/core.db.sig", False),
                                         ("m.example/pool/InRelease", False)])
def test_signed_index_keys(key: str, signed: bool) -> None:
    assert is_signed_index(key) is signed


@pytest.mark.parametrize("key, suffix", [("m.example/debian/dists/stable/Release", ".gpg"), (REPOMD, ".asc"),
                                         ("m.example/arch/core/os/x86_64/core.db", ".sig"),
                                         ("m.example/debian/dists/stable/InRelease", None)])
def test_signature_files_beside_their_index(key: str, suffix: str | None) -> None:
    assert detached_suffix(key) == suffix
    if suffix:
        assert signed_by_file(key + suffix) == key
    assert signed_by_file(key) is None


def test_origin() -> None:
    assert origin(DEBIAN) == "debian" and origin(OTHER) == "example" and origin(b"Suite: x\n") == ""


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[bytes, Path]:
    home = tmp_path_factory.mktemp("g")
    env = {**os.environ, "GNUPGHOME": str(home)}
    os.chmod(home, 0o700)
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "t@example.invalid", "default",
                    "default", "never"], env=env, check=True, capture_output=True)
    msg = subprocess.run(["gpg", "--batch", "--clearsign"], input=b"Origin: Example\n", env=env, check=True,
                         capture_output=True).stdout
    (home / "k.gpg").write_bytes(subprocess.run(["gpg", "--export"], env=env, check=True, capture_output=True).stdout)
    (home / "k.asc").write_bytes(subprocess.run(["gpg", "--export", "-a"], env=env, check=True,
                                                capture_output=True).stdout)
    return msg, home


def test_gpgv_reads_binary_and_armored_keyrings(signed, tmp_path: Path) -> None:
    msg, home = signed
    for ring in (home / "k.gpg", home / "k.asc"):
        assert asyncio.run(gpgv.verify(msg, (ring,))) is None
        assert gpgv.verify_now(msg, (ring,)) is None
    tampered = msg.replace(b"Example", b"Examplf")
    assert "does not verify" in (asyncio.run(gpgv.verify(tampered, (home / "k.gpg",))) or "")
    assert "does not verify" in (gpgv.verify_now(b"Origin: Example\n", (home / "k.gpg",)) or "")  # unsigned
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "cannot be checked" in (asyncio.run(gpgv.verify(msg, (empty,))) or "")


def test_gpgv_checks_a_detached_signature(signed) -> None:
    _, home = signed
    env = {**os.environ, "GNUPGHOME": str(home)}
    data = b"<repomd/>\n"
    sig = subprocess.run(["gpg", "--batch", "--detach-sign", "-a"], input=data, env=env, check=True,
                         capture_output=True).stdout
    assert asyncio.run(gpgv.verify(data, (home / "k.gpg",), sig)) is None
    assert gpgv.verify_now(data, (home / "k.asc",), sig) is None
    assert "does not verify" in (asyncio.run(gpgv.verify(data + b" ", (home / "k.gpg",), sig)) or "")
    assert "does not verify" in (gpgv.verify_now(data, (home / "k.gpg",), b"junk") or "")


def test_an_apkindex_signature_against_alpine_keys(tmp_path: Path) -> None:
    from support.apkrepo import Package, sign_index, signing_key, v2_repository

    name = "builder@example.invalid-1.rsa.pub"
    key, _ = signing_key(tmp_path / "keys", name)
    other, _ = signing_key(tmp_path / "other", name)
    index = v2_repository([Package("demo", "1.0-r0", {"a": b"a\n"})])["APKINDEX.tar.gz"]
    assert apksign.verify(sign_index(index, key, name), (tmp_path / "keys",)) is None
    assert "not signed by" in (apksign.verify(sign_index(index, other, name), (tmp_path / "keys",)) or "")
    assert "unsigned" in (apksign.verify(index, (tmp_path / "keys",)) or "")
    assert "no key named" in (apksign.verify(sign_index(index, key, "x.rsa.pub"), (tmp_path / "keys",)) or "")
    assert "not a gzip" in (apksign.verify(b"junk", (tmp_path / "keys",)) or "")
    assert apksign.is_adb(b"ADB.indx") and not apksign.is_adb(index)


def test_an_adb_index_signature_as_apk_mkndx_writes_it(tmp_path: Path) -> None:
    from support.apkrepo import Package, signing_key, v3_repository

    signing_key(tmp_path / "keys", "builder@example.invalid-1.rsa.pub")
    signing_key(tmp_path / "other", "builder@example.invalid-1.rsa.pub")
    index = v3_repository([Package("demo", "1.0-r0", {"a": b"a\n"})], tmp_path / "build",
                          sign_key=tmp_path / "keys.key")["APKINDEX.tar.gz"]
    assert apksign.is_adb(index)
    assert apksign.verify(index, (tmp_path / "keys",)) is None
    assert "not signed by" in (apksign.verify(index, (tmp_path / "other",)) or "")
    unsigned = v3_repository([Package("demo", "1.0-r0", {"a": b"a\n"})], tmp_path / "plain")["APKINDEX.tar.gz"]
    assert "unsigned" in (apksign.verify(unsigned, (tmp_path / "keys",)) or "")
