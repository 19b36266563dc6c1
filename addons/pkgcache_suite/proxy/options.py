"""The cache addon's mitmproxy options (names, defaults, the help mitmweb shows), and how a bad value is refused.

Every pkgcache option is a string to mitmproxy and is parsed here: a value
mitmproxy itself failed to parse would make it drop the whole suite silently.
"""

from __future__ import annotations

import difflib
import os
import sys
from typing import Any, NoReturn

from mitmproxy import exceptions

from pkgcache_suite.settings import Settings, default_cache_dir, parse

OPTIONS: list[tuple[str, type, Any, str]] = [
    ("pkgcache_dir", str, default_cache_dir(), "Cache root: bodies under host/path, index in .pkgcache/."),
    ("pkgcache_filter", str, "", "Filter file: one regex per line (full URL) never cached; "
     "'immutable|volatile|pass REGEX' forces a class."),
    ("pkgcache_rules", str, "", "Directory of classification rules (*.conf); default: the shipped ones (pkgcache_suite/rules)."),
    ("pkgcache_memory_hit_max", str, "1M",
     "Hits up to this size (1048576, 512K, 1M) are answered from memory; larger ones are streamed from disk."),
    ("pkgcache_follow_timeout", str, "60",
     "Seconds a request waits for another download of the same URL to start before going upstream itself."),
    ("pkgcache_connect_timeout", str, "15",
     "Seconds a download may take to connect to upstream before it is given up."),
    ("pkgcache_idle_timeout", str, "30",
     "Seconds upstream may send nothing (before or during the body) before the download is cut; "
     "nothing is stored and the clients waiting for it are told at once."),
    ("pkgcache_negative_ttl", str, "300",
     "Seconds a 404 from upstream for a package file or index is repeated without asking again (0: never); "
     "offline, a URL upstream said does not exist is answered 404 and not added to the wanted list."),
    ("pkgcache_max_size", str, "0",
     "Largest the cache may grow (50G, 500M; 0: no limit). Above it, the least recently used files are removed, "
     "those no cached index lists first; pinned files (pkgcache pin) never."),
    ("pkgcache_front_fetch", str, "",
     "Set by pkgcache serve --workers: the tier's run folder. Misses of package files are then fetched and stored "
     "by the tier's nginx and admitted here, and hits are handed to nginx; empty: this proxy moves every byte."),
    ("pkgcache_min_free", str, "128M",
     "Free disk space to keep on the cache's disk: below it, new files are passed on without being stored, "
     "and an error is logged (0: fill the disk)."),
]
NAMES = {name for name, *_ in OPTIONS}


def refuse_repeated(opts: Any, fail_fast: bool) -> None:
    """An option given twice on the command line (``--set pkgcache_dir=a --set pkgcache_dir=b``): mitmproxy
    would refuse it after the suite has loaded and then run as a plain proxy, caching nothing, without a word.
    Checked when the suite loads, before that happens."""
    for name, value in getattr(opts, "deferred", {}).items():
        values = getattr(value, "val", None)
        if name.startswith("pkgcache_") and isinstance(values, list) and len(values) > 1:
            reject(ValueError(f"{name} is given {len(values)} times ({', '.join(map(repr, values))}): "
                              "give it once"), fail_fast, False)


def refuse_unknown(opts: Any, fail_fast: bool) -> None:
    """A ``pkgcache_*`` option no addon of the suite defines (a typo: ``pkgcache_ofline=on``): mitmproxy keeps
    it aside in case an addon defines it later, and the proxy would start as if it were not given.  Checked
    once every addon of the suite has loaded, naming the option meant."""
    known = [k for k in opts.keys() if k.startswith("pkgcache_")]
    for name in sorted(getattr(opts, "deferred", {})):
        if name.startswith("pkgcache_"):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            reject(ValueError(f"{name} is not a pkgcache option{hint}"), fail_fast, False)


def settings(opts: Any) -> Settings:
    """Parse the options into Settings; ValueError names the option and what is wrong."""
    return parse(opts)


def reject(error: ValueError, fail_fast: bool, started: bool) -> NoReturn:
    """A bad value.  At the start of a real proxy: one line, exit status 2, before anything listens (mitmproxy
    would print a traceback and start listening first).  Later (mitmweb's option editor), or in tests: an
    OptionsError, which mitmproxy shows and rolls back."""
    if fail_fast and not started:
        print(f"pkgcache: bad option: {error}", file=sys.stderr, flush=True)
        os._exit(2)
    raise exceptions.OptionsError(str(error)) from None
