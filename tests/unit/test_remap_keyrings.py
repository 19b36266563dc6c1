"""A Remap line's keyring= (repos/config.py): a repository's own keyrings, none, or a missing one reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pkgcache_suite.repos.config import parse_conf


@pytest.mark.parametrize("option, keyrings, problem", [
    ("", None, False),  # not given: pkgcache_keyrings (or the system's) decide
    ("keyring=none", (), False),
    ("keyring=ring.gpg", ("ring.gpg",), False),  # relative to the config file's folder
    ("keyring=ring.gpg,keys", ("ring.gpg", "keys"), False),
    ("keyring=absent.gpg", ("absent.gpg",), True),
])
def test_remap_keyring(tmp_path: Path, option: str, keyrings: tuple[str, ...] | None, problem: bool) -> None:
    (tmp_path / "ring.gpg").write_bytes(b"")
    (tmp_path / "keys").mkdir()
    conf = tmp_path / "acng.conf"
    conf.write_text(f"Remap-r: /r http://mirror.example/r ; http://mirror.example/r ; {option}\n")
    cfg = parse_conf(str(conf))
    want = None if keyrings is None else tuple((tmp_path / k).resolve() for k in keyrings)
    assert cfg.repos[0].keyrings == want
    assert any("keyring" in p and "does not exist" in p for p in cfg.problems) is problem
