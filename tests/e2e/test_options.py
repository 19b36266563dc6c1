"""Every pkgcache option is validated at start: a bad value stops mitmdump with one line naming the option,
the value and what is allowed, a non-zero exit, no traceback, and nothing listening."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.proxy import ENTRY, mitmdump

BAD = {
    "pkgcache_dir": ("{file}", "not a directory"),
    "pkgcache_filter": ("{missing}", "not a readable file"),
    "pkgcache_rules": ("{missing}", "not a directory"),
    "pkgcache_memory_hit_max": ("1X", "expected a size"),
    "pkgcache_max_size": ("lots", "expected a size"),
    "pkgcache_min_free": ("-1G", "expected a size"),
    "pkgcache_follow_timeout": ("soon", "whole number of seconds"),
    "pkgcache_connect_timeout": ("0", "whole number of seconds"),
    "pkgcache_idle_timeout": ("-5", "whole number of seconds"),
    "pkgcache_negative_ttl": ("1.5", "whole number of seconds"),
    "pkgcache_index_fresh": ("1.5", "whole number of seconds"),
    "pkgcache_keyrings": ("{missing}", "neither a keyring file nor a folder"),
    "pkgcache_conf": ("{missing}", "pkgcache_conf"),
    "pkgcache_allow_ports": ("http", "expected port numbers"),
    "pkgcache_allow_clients": ("10.0.0.0/33", "not an address or network"),
    "pkgcache_trusted_front": ("front.example", "not an address or network"),
    "pkgcache_force_managed": ("maybe", "expected true or false"),
    "pkgcache_intercept_hosts": ("mirror example", "expected host names"),
    "pkgcache_allow_loopback": ("perhaps", "expected true or false"),
    "pkgcache_offline": ("maybe", "expected one of auto, on, off"),
    "pkgcache_datastore": ("{file}", "pkgcache_datastore"),
    "pkgcache_probe_interval": ("often", "whole number of seconds"),
    "pkgcache_usb_events": ("bluetooth", "expected udev or file:PATH"),
    "pkgcache_mounts": ("{missing}", "not a readable mount table"),
    "pkgcache_deb_arch": ("AMD 64", "expected Debian architectures"),
    "pkgcache_front_fetch": ("{missing}", "not a directory"),
}
# options every value of which is valid (a password is any string)
ANY_VALUE = {"pkgcache_admin_password"}


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not any(a.startswith("pkgcache_datastore=") for a in args):
        args = ("--set", f"pkgcache_datastore={tmp_path / 'ds'}", *args)
        (tmp_path / "ds").mkdir(exist_ok=True)
    return subprocess.run([mitmdump(), "-s", str(ENTRY), "--listen-host", "127.0.0.1", "--listen-port", "0", *args],
                          capture_output=True, text=True, timeout=60)


def test_the_table_names_every_option() -> None:
    from mitmproxy.test import taddons

    from pkgcache_suite.proxy.suite import build_addons

    with taddons.context(*build_addons()) as tctx:
        names = {n for n in tctx.options.keys() if n.startswith("pkgcache_")}
    assert names == set(BAD) | ANY_VALUE


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_stops_the_start_with_one_line(name: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    value, allowed = BAD[name]
    value = value.format(file=tmp_path / "a-file", missing=tmp_path / "missing")
    args = ["--set", f"{name}={value}"]
    if name != "pkgcache_dir":
        args += ["--set", f"pkgcache_dir={tmp_path / 'cache'}"]
    r = _run(tmp_path, *args)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    lines = [ln for ln in out.splitlines() if "pkgcache: bad option:" in ln]
    assert len(lines) == 1 and name in lines[0] and allowed in lines[0], out
    assert "Traceback" not in out and "listening" not in out, out


def test_sizes_take_units(tmp_path: Path) -> None:
    from pkgcache_suite.settings import parse_size

    assert [parse_size("x", v, 64 << 20) for v in ("0", "65536", "512K", "1M", "1MiB", "2m")] == \
        [0, 65536, 512 << 10, 1 << 20, 1 << 20, 2 << 20]
    with pytest.raises(ValueError, match="at most 64M"):
        parse_size("x", "1G", 64 << 20)


def test_an_option_given_twice_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """mitmproxy would refuse it after the suite loaded and run as a plain proxy that caches nothing."""
    r = _run(tmp_path, "--set", f"pkgcache_dir={tmp_path / 'a'}", "--set", f"pkgcache_dir={tmp_path / 'b'}")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    lines = [ln for ln in out.splitlines() if "pkgcache: bad option:" in ln]
    assert len(lines) == 1 and "pkgcache_dir is given 2 times" in lines[0], out
    assert "Traceback" not in out and "listening" not in out, out


def test_a_misspelt_option_stops_the_start_and_names_the_right_one(tmp_path: Path) -> None:
    r = _run(tmp_path, "--set", f"pkgcache_dir={tmp_path / 'cache'}", "--set", "pkgcache_ofline=on")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    lines = [ln for ln in out.splitlines() if "pkgcache: bad option:" in ln]
    assert len(lines) == 1 and "pkgcache_ofline" in lines[0] and "pkgcache_offline" in lines[0], out
    assert "Traceback" not in out and "listening" not in out, out


@pytest.mark.parametrize("where", ["missing", "deep"])
def test_a_datastore_that_is_not_there_is_refused_and_nothing_is_written_there(tmp_path: Path, where: str) -> None:
    """A stick that is not mounted leaves a path that does not exist: the wanted list must not land there."""
    ds = tmp_path / "stick" / "pkgcache" if where == "missing" else tmp_path / "no" / "such" / "dir"
    r = _run(tmp_path, "--set", f"pkgcache_dir={tmp_path / 'cache'}", "--set", f"pkgcache_datastore={ds}",
             "--set", "pkgcache_offline=on")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    lines = [ln for ln in out.splitlines() if "pkgcache: bad option:" in ln]
    assert len(lines) == 1 and "pkgcache_datastore" in lines[0] and "does not exist" in lines[0], out
    assert not ds.exists() and not ds.parent.exists(), "nothing is made where the stick should be"


def test_a_cache_folder_whose_parent_is_missing_is_refused(tmp_path: Path) -> None:
    r = _run(tmp_path, "--set", f"pkgcache_dir={tmp_path / 'no' / 'such' / 'cache'}")
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "pkgcache_dir" in out and "does not exist" in out, out
    assert not (tmp_path / "no").exists()
