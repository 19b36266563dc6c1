"""pkgcache's settings as one immutable value, and the pure parsers that build it.

``ctx.options.X`` deep-copies on every read, so hooks never read options: they
read the Settings built once per ``configure()``.  The parsers raise
``ValueError`` with a message naming the option; the addon turns that into
mitmproxy's ``OptionsError``, so a bad value stops mitmdump at start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pkgcache")


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    filter_file: Path | None
    rules_dir: Path | None
    memory_hit_max: int
    follow_timeout: int
    connect_timeout: int = 15
    idle_timeout: int = 30
    negative_ttl: int = 300


def parse_cache_dir(value: str) -> Path:
    if not value.strip():
        raise ValueError("pkgcache_dir must not be empty")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"pkgcache_dir {path} exists and is not a directory")
    return path


def parse_optional_file(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_file():
        raise ValueError(f"{name} {path} is not a readable file")
    return path


def parse_optional_dir(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_dir():
        raise ValueError(f"{name} {path} is not a directory")
    return path


def parse_bounded(name: str, value: int, low: int, high: int, unit: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} {unit}, not {value}")
    return value


def parse(opts: Any) -> Settings:
    """Settings from mitmproxy's options (any object with the pkgcache_* attributes)."""
    return Settings(
        cache_dir=parse_cache_dir(opts.pkgcache_dir),
        filter_file=parse_optional_file("pkgcache_filter", opts.pkgcache_filter),
        rules_dir=parse_optional_dir("pkgcache_rules", opts.pkgcache_rules),
        memory_hit_max=parse_bounded("pkgcache_memory_hit_max", opts.pkgcache_memory_hit_max, 0, 64 << 20, "bytes"),
        follow_timeout=parse_bounded("pkgcache_follow_timeout", opts.pkgcache_follow_timeout, 1, 86400, "seconds"),
        connect_timeout=parse_bounded("pkgcache_connect_timeout", opts.pkgcache_connect_timeout, 1, 3600, "seconds"),
        idle_timeout=parse_bounded("pkgcache_idle_timeout", opts.pkgcache_idle_timeout, 1, 86400, "seconds"),
        negative_ttl=parse_bounded("pkgcache_negative_ttl", opts.pkgcache_negative_ttl, 0, 86400, "seconds"),
    )
