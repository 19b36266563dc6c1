"""How the suite's options reach mitmproxy (declared from settings/table.py), and how a bad value is refused."""

from __future__ import annotations

import difflib
import os
import sys
from typing import Any, NoReturn

from mitmproxy import exceptions

from pkgcache_suite.settings.table import declared_by


def declare(loader: Any, section: str) -> None:
    """Declare to mitmproxy the options this addon owns (settings/table.py), as strings parsed by the suite."""
    for o in declared_by(section):
        if o.choices:
            loader.add_option(o.name, str, o.default, o.help, choices=list(o.choices))
        else:
            loader.add_option(o.name, str, o.default, o.help)


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


def reject(error: ValueError, fail_fast: bool, started: bool) -> NoReturn:
    """A bad value.  At the start of a real proxy: one line, exit status 2, before anything listens (mitmproxy
    would print a traceback and start listening first).  Later (mitmweb's option editor), or in tests: an
    OptionsError, which mitmproxy shows and rolls back."""
    if fail_fast and not started:
        print(f"pkgcache: bad option: {error}", file=sys.stderr, flush=True)
        os._exit(2)
    raise exceptions.OptionsError(str(error)) from None
