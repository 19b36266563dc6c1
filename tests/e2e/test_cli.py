"""The pkgcache command as an admin meets it: where the cache is, mistakes, pipes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.proxy import Proxy


def _pkgcache(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkgcache", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_cache_dir_before_or_after_the_command_and_from_the_environment(proxy: Proxy) -> None:
    root = str(proxy.cache_dir)
    for args, env in ((["--cache-dir", root, "ls"], None), (["ls", "--cache-dir", root], None),
                      (["ls"], {"PKGCACHE_DIR": root})):
        r = _pkgcache(*args, env=env)
        assert r.returncode == 0 and "entries" in r.stdout, (args, r.stderr)


def test_a_mistyped_cache_root_is_refused_not_created(tmp_path: Path) -> None:
    for cmd in (["ls"], ["expire", "--dry-run"], ["verify"], ["releases"]):
        r = _pkgcache("--cache-dir", str(tmp_path / "typo"), *cmd)
        assert r.returncode == 2 and "does not exist" in r.stderr, (cmd, r.stderr)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "plain").mkdir()
    r = _pkgcache("verify", "--cache-dir", str(tmp_path / "plain"))
    assert r.returncode == 2 and "not a pkgcache cache" in r.stderr


def test_a_closed_pipe_is_no_error(proxy: Proxy) -> None:
    for i in range(3):
        (proxy.cache_dir / f"h/f{i}").parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(f"pkgcache --cache-dir {proxy.cache_dir} ls | head -c 1 >/dev/null", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_removing_an_unknown_release_fails_and_lists_the_known_ones(proxy: Proxy) -> None:
    r = _pkgcache("--cache-dir", str(proxy.cache_dir), "releases", "remove", "nosuch")
    assert r.returncode == 1 and "no release 'nosuch'" in r.stderr and "known:" in r.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(["pkgcache", "--cache-dir", str(tmp_path / "c"), "serve", "--listen-host", "127.0.0.1",
                            "--listen-port", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stdout + r.stderr
    assert f"port {port} is in use" in r.stderr and "--listen-port" in r.stderr and "--mode" not in r.stderr
