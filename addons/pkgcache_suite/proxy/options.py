"""The cache addon's mitmproxy options: names, types, defaults and the help mitmweb shows."""

from __future__ import annotations

from typing import Any

from pkgcache_suite.settings import Settings, default_cache_dir, parse

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
    ("pkgcache_negative_ttl", int, 300,
     "Seconds a 404 from upstream for a package file or index is repeated without asking again (0: never); "
     "offline, a URL upstream said does not exist is answered 404 and not added to the wanted list."),
]
NAMES = {name for name, *_ in OPTIONS}


def settings(opts: Any) -> Settings:
    """Parse the options into Settings; ValueError names the option and what is wrong."""
    return parse(opts)
