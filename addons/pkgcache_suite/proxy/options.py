"""pkgcache's mitmproxy options, and their parsing into one immutable Settings value.

``ctx.options.X`` deep-copies on every read, so hooks never read options: they
read the Settings built here once per ``configure()``.  Bad values raise
``OptionsError`` so mitmdump stops at start with the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import exceptions


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pkgcache")


OPTIONS: list[tuple[str, type, Any, str]] = [
    ("pkgcache_dir", str, default_cache_dir(), "Cache root: bodies under host/path, index in .pkgcache/."),
    ("pkgcache_filter", str, "", "Filter file: one regex per line (full URL) never cached; "
     "'immutable|volatile|pass REGEX' forces a class."),
    ("pkgcache_rules", str, "", "Directory of classification rules (*.conf); default: the shipped conf/rules."),
    ("pkgcache_memory_hit_max", int, 1 << 20,
     "Hits up to this many bytes are answered from memory; larger ones are streamed from disk."),
    ("pkgcache_follow_timeout", int, 60,
     "Seconds a request waits for another download of the same URL to start before going upstream itself."),
    ("pkgcache_connect_timeout", int, 15,
     "Seconds a download may take to connect to upstream before it is given up."),
    ("pkgcache_idle_timeout", int, 30,
     "Seconds upstream may send nothing (before or during the body) before the download is cut; "
     "nothing is stored and the clients waiting for it are told at once."),
]


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    filter_file: Path | None
    rules_dir: Path | None
    memory_hit_max: int
    follow_timeout: int
    connect_timeout: int = 15
    idle_timeout: int = 30


def parse(opts: Any) -> Settings:
    cache_dir = Path(opts.pkgcache_dir).expanduser()
    if not opts.pkgcache_dir.strip():
        raise exceptions.OptionsError("pkgcache_dir must not be empty")
    if cache_dir.exists() and not cache_dir.is_dir():
        raise exceptions.OptionsError(f"pkgcache_dir {cache_dir} exists and is not a directory")
    filter_file = Path(opts.pkgcache_filter).expanduser() if opts.pkgcache_filter else None
    if filter_file and not filter_file.is_file():
        raise exceptions.OptionsError(f"pkgcache_filter {filter_file} is not a readable file")
    rules_dir = Path(opts.pkgcache_rules).expanduser() if opts.pkgcache_rules else None
    if rules_dir and not rules_dir.is_dir():
        raise exceptions.OptionsError(f"pkgcache_rules {rules_dir} is not a directory")
    if opts.pkgcache_memory_hit_max < 0 or opts.pkgcache_memory_hit_max > 64 << 20:
        raise exceptions.OptionsError("pkgcache_memory_hit_max must be between 0 and 64 MiB")
    for name in ("pkgcache_follow_timeout", "pkgcache_connect_timeout", "pkgcache_idle_timeout"):
        if getattr(opts, name) <= 0:
            raise exceptions.OptionsError(f"{name} must be a positive number of seconds")
    return Settings(
        cache_dir=cache_dir,
        filter_file=filter_file,
        rules_dir=rules_dir,
        memory_hit_max=opts.pkgcache_memory_hit_max,
        follow_timeout=opts.pkgcache_follow_timeout,
        connect_timeout=opts.pkgcache_connect_timeout,
        idle_timeout=opts.pkgcache_idle_timeout,
    )
