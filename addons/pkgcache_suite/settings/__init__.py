"""Options and settings: one table of every ``pkgcache_*`` option, its pure parsers, each addon's frozen value."""

from pkgcache_suite.settings.parsers import (
    default_cache_dir, parse_bool, parse_bounded, parse_cache_dir, parse_choice, parse_size)
from pkgcache_suite.settings.table import OPTIONS, Option, parse_section
from pkgcache_suite.settings.values import CacheSettings, OfflineSettings, RouterSettings, Settings

__all__ = ["OPTIONS", "CacheSettings", "OfflineSettings", "Option", "RouterSettings", "Settings",
           "default_cache_dir", "parse", "parse_bool", "parse_bounded", "parse_cache_dir", "parse_choice",
           "parse_section", "parse_size"]


def parse(opts: object) -> Settings:
    """The cache addon's settings from options (any object with the pkgcache_* attributes)."""
    return parse_section(Settings, opts)
