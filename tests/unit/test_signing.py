"""Which InRelease must verify against what (pure), and gpgv's verdict on keyrings binary and armored."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from pkgcache_suite.signing import gpgv
from pkgcache_suite.signing.policy import SYSTEM_KEYRINGS, is_signed_index, keyring_dirs, origin

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


@pytest.mark.parametrize("key, signed", [("m.example/debian/dists/stable/InRelease", True),
                                         ("m.example/debian/dists/stable/updates/InRelease", True),
                                         ("m.example/debian/dists/stable/Release", False),
                                         ("m.example/pool/InRelease", False)])
def test_signed_index_keys(key: str, signed: bool) -> None:
    assert is_signed_index(key) is signed


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
