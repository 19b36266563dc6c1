"""pkgcache's settings as one immutable value, and the pure parsers that build it.

``ctx.options.X`` deep-copies on every read, so hooks never read options: they
read the Settings built once per ``configure()``.  The parsers raise
``ValueError`` with a message naming the option; the addon turns that into
mitmproxy's ``OptionsError``, so a bad value stops mitmdump at start.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pkgcache_suite.mountpoints import check_place


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
    max_size: int = 0  # 0: no limit
    min_free: int = 128 << 20
    front_run: Path | None = None  # behind the tier's nginx: its run folder (landing folder, fetch log)


def parse_cache_dir(value: str) -> Path:
    if not value.strip():
        raise ValueError("pkgcache_dir='': expected a directory for the cache")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"pkgcache_dir={value!r}: exists and is not a directory")
    unmounted = check_place(str(path))
    if unmounted:
        raise ValueError(f"pkgcache_dir={value!r}: {unmounted}")
    if not path.exists() and not path.parent.is_dir() and str(path) != default_cache_dir():
        # a mistyped deep path is refused; a new cache folder in a folder that exists is made
        raise ValueError(f"pkgcache_dir={value!r}: {path.parent} does not exist (create it first)")
    return path


def parse_optional_file(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_file():
        raise ValueError(f"{name}={value!r}: not a readable file")
    return path


def parse_optional_dir(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_dir():
        raise ValueError(f"{name}={value!r}: not a directory")
    return path


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse_size(name: str, value: str | int, high: int) -> int:
    """A byte count: 1048576, 512K, 1M, 2G (binary units; KiB/MiB/GiB and KB/MB/GB read the same)."""
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{name}={value!r}: expected a size such as 1048576, 512K, 1M or 2G")
    size = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if size > high:
        raise ValueError(f"{name}={value!r}: at most {high >> 20}M" if high < 1 << 40 else f"{name}={value!r}: too large")
    return size


def parse_bounded(name: str, value: str | int, low: int, high: int, unit: str) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise ValueError(f"{name}={value!r}: expected a whole number of {unit} from {low} to {high}")
    n = int(text)
    if not low <= n <= high:
        raise ValueError(f"{name}={value!r}: expected a whole number of {unit} from {low} to {high}")
    return n


def parse_bool(name: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in _TRUE or v in _FALSE:
        return v in _TRUE
    raise ValueError(f"{name}={value!r}: expected true or false")


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def parse(opts: Any) -> Settings:
    """Settings from mitmproxy's options (any object with the pkgcache_* attributes)."""
    return Settings(
        cache_dir=parse_cache_dir(opts.pkgcache_dir),
        filter_file=parse_optional_file("pkgcache_filter", opts.pkgcache_filter),
        rules_dir=parse_optional_dir("pkgcache_rules", opts.pkgcache_rules),
        memory_hit_max=parse_size("pkgcache_memory_hit_max", opts.pkgcache_memory_hit_max, 64 << 20),
        follow_timeout=parse_bounded("pkgcache_follow_timeout", opts.pkgcache_follow_timeout, 1, 86400, "seconds"),
        connect_timeout=parse_bounded("pkgcache_connect_timeout", opts.pkgcache_connect_timeout, 1, 3600, "seconds"),
        idle_timeout=parse_bounded("pkgcache_idle_timeout", opts.pkgcache_idle_timeout, 1, 86400, "seconds"),
        negative_ttl=parse_bounded("pkgcache_negative_ttl", opts.pkgcache_negative_ttl, 0, 86400, "seconds"),
        max_size=parse_size("pkgcache_max_size", opts.pkgcache_max_size, 1 << 60),
        min_free=parse_size("pkgcache_min_free", opts.pkgcache_min_free, 1 << 60),
        front_run=parse_optional_dir("pkgcache_front_fetch", getattr(opts, "pkgcache_front_fetch", "")),
    )
