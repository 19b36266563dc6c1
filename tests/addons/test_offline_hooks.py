"""The offline addon's configuration with taddons: parsed per changed option, knowledge kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from pkgcache_suite.context import CacheContext
from pkgcache_suite.proxy import options
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.proxy.offline import OfflineAddon
from pkgcache_suite.proxy.router import Router
from pkgcache_suite.proxy.storeaddon import StoreAddon


class CacheOptions:
    """The cache addon's options alone (pkgcache_dir among them), without the addon."""

    def load(self, loader) -> None:
        options.declare(loader, "cache")


def offline_addon(shared: CacheContext) -> OfflineAddon:
    """The offline addon with the collaborators the suite hands it (a store addon that never configures)."""
    reach = Reachability()
    return OfflineAddon(shared, StoreAddon(shared).opened, reach, Router(shared, reach))


def first_configure(tctx, addon, **kw) -> None:
    """As mitmproxy does when it loads a script: every option counts as changed."""
    tctx.options.update(**kw)
    addon.configure(set(tctx.options.keys()))


def test_reconfiguring_keeps_what_is_known_about_upstream(tmp_path: Path) -> None:
    shared = CacheContext()
    addon = offline_addon(shared)
    with taddons.context(CacheOptions(), addon) as tctx:
        (tmp_path / "ds").mkdir(exist_ok=True)  # a datastore folder is made by its admin
        first_configure(tctx, addon, pkgcache_dir=str(tmp_path / "c"), pkgcache_datastore=str(tmp_path / "ds"))
        reach = addon.reach
        assert reach is not None
        reach.mark("mirror.example", 80, False)
        tctx.configure(addon, pkgcache_probe_interval="7")
        assert addon.reach is reach and reach.up_ttl == 7
        assert reach.known_down("mirror.example", 80)
        tctx.configure(addon, pkgcache_offline="on")
        assert reach.mode == "on" and reach.known_down("mirror.example", 80)


def test_it_needs_no_store_to_configure(tmp_path: Path) -> None:
    shared = CacheContext()
    addon = offline_addon(shared)
    with taddons.context(CacheOptions(), addon) as tctx:  # the cache addon has not configured: there is no store yet
        (tmp_path / "ds").mkdir(exist_ok=True)  # a datastore folder is made by its admin
        first_configure(tctx, addon, pkgcache_dir=str(tmp_path / "c"), pkgcache_datastore=str(tmp_path / "ds"))
        assert not addon.storage.is_open
        assert addon.wanted_list().local_path == tmp_path / "c" / ".pkgcache" / "wanted.json"


def test_bad_values_stop_configuration(tmp_path: Path) -> None:
    addon = offline_addon(CacheContext())
    with taddons.context(CacheOptions(), addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="pkgcache_usb_events"):
            tctx.configure(addon, pkgcache_usb_events="bogus")
        with pytest.raises(exceptions.OptionsError, match="pkgcache_probe_interval"):
            tctx.configure(addon, pkgcache_probe_interval="-1")
