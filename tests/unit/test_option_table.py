"""The one option table: every option parsed by one pure function, and the options one setting implies."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from pkgcache_suite.proxy.defaults import implied
from pkgcache_suite.settings import OPTIONS, OfflineSettings, RouterSettings, Settings, parse_section
from pkgcache_suite.settings.table import declared_by, rows


def _defaults(**over: str) -> SimpleNamespace:
    values = {o.name: o.default for o in OPTIONS}
    values.update(over)
    return SimpleNamespace(**values)


def test_every_option_is_declared_once_and_read_by_some_settings() -> None:
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    sections = {"cache": Settings, "router": RouterSettings, "offline": OfflineSettings}
    assert sorted(o.name for s in sections for o in declared_by(s)) == sorted(names)
    for section, cls in sections.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert {o.field for o in rows(section)} == fields, section  # a field per row, a row per field


def test_defaults_parse_and_only_what_changed_is_parsed_again(tmp_path: Path) -> None:
    opts = _defaults(pkgcache_dir=str(tmp_path / "c"))
    s = parse_section(Settings, opts)
    assert s.memory_hit_max == 1 << 20 and s.follow_timeout == 60
    opts.pkgcache_follow_timeout, opts.pkgcache_idle_timeout = "5", "not a number"
    s2 = parse_section(Settings, opts, {"pkgcache_follow_timeout"}, s)  # the bad value is not looked at
    assert s2.follow_timeout == 5 and s2.idle_timeout == 30
    with pytest.raises(ValueError, match="pkgcache_idle_timeout"):
        parse_section(Settings, opts, {"pkgcache_idle_timeout"}, s2)


@pytest.mark.parametrize("name,value", [
    ("pkgcache_allow_ports", "80,http"), ("pkgcache_allow_clients", "not-a-network"),
    ("pkgcache_intercept_hosts", "a b/c"), ("pkgcache_force_managed", "maybe"),
    ("pkgcache_offline", "sometimes"), ("pkgcache_usb_events", "dbus"), ("pkgcache_deb_arch", "AMD64"),
    ("pkgcache_probe_interval", "-1"), ("pkgcache_memory_hit_max", "1X"),
])
def test_a_bad_value_names_its_option(tmp_path: Path, name: str, value: str) -> None:
    opts = _defaults(pkgcache_dir=str(tmp_path / "c"), **{name: value})
    cls = next(c for c in (Settings, RouterSettings, OfflineSettings)
               if name in {o.name for o in rows(c.SECTION)})
    with pytest.raises(ValueError, match=name):
        parse_section(cls, opts)


def test_a_config_file_wins_over_the_option_it_overlaps(tmp_path: Path) -> None:
    conf = tmp_path / "acng.conf"
    conf.write_text("AllowUserPorts: 80 8080\nForceManaged: 1\nAdminAuth: root:pw\n")
    r = parse_section(RouterSettings, _defaults(pkgcache_conf=str(conf), pkgcache_admin_password="x"))
    assert r.allow_ports == {80, 8080} and r.force_managed and r.admin_auth == "root:pw"
    r = parse_section(RouterSettings, _defaults(pkgcache_admin_password="x"))
    assert r.allow_ports == {80, 443} and not r.force_managed and r.admin_auth == "admin:x"


@pytest.mark.parametrize("opts,updated,conf_offline,intercepting,ca,want", [
    # the machine's CAs when no file is named; a named file wins
    ({"ssl_verify_upstream_trusted_ca": None}, {"ssl_verify_upstream_trusted_ca"}, False, False, "/ca.pem",
     {"ssl_verify_upstream_trusted_ca": "/ca.pem"}),
    ({"ssl_verify_upstream_trusted_ca": "/mine.pem"}, {"ssl_verify_upstream_trusted_ca"}, False, False, "/ca.pem", {}),
    ({"ssl_verify_upstream_trusted_ca": None}, {"ssl_verify_upstream_trusted_ca"}, False, False, None, {}),
    # Offline in a config file
    ({}, {"pkgcache_conf"}, True, False, None, {"pkgcache_offline": "on"}),
    ({}, {"pkgcache_conf"}, False, False, None, {}),
    # lazy connections for mirror-style listeners and interception
    ({"connection_strategy": "eager", "mode": ["reverse:http://mirror.example"]}, {"mode"}, False, False, None,
     {"connection_strategy": "lazy"}),
    ({"connection_strategy": "eager", "mode": ["regular"]}, {"pkgcache_intercept_hosts"}, False, True, None,
     {"connection_strategy": "lazy"}),
    ({"connection_strategy": "eager", "mode": ["regular"]}, {"mode"}, False, False, None, {}),
    # mitmweb's comment column
    ({"web_columns": ["path"]}, {"web_columns"}, False, False, None, {"web_columns": ["path", "comment"]}),
    ({"web_columns": ["path", "comment"]}, {"web_columns"}, False, False, None, {}),
])
def test_what_one_setting_implies(opts, updated, conf_offline, intercepting, ca, want) -> None:
    assert implied(opts, updated, conf_offline, intercepting, ca, columns_added=False) == want
