"""`pkgcache precache`: what the command prints and returns around maintenance/precache.py's plan and download."""

from __future__ import annotations

import asyncio
import sys

from pkgcache_suite.cli.preflight import unreachable
from pkgcache_suite.maintenance.precache import Selection, describe, download, plan
from pkgcache_suite.maintenance.tasks import record_run
from pkgcache_suite.progress import TransferProgress
from pkgcache_suite.storage import CacheStore
from pkgcache_suite.units import human_size


def run_precache(store: CacheStore, selection: Selection, proxy: str, jobs: int, estimate: bool,
                 verbose: bool = False) -> int:
    p = plan(store, selection)
    if not p.indexes:
        print(f"pkgcache precache: no cached index matches {describe(selection)}", file=sys.stderr)
        return 1
    print(f"pkgcache precache: {len(p.indexes)} indexes list {len(p.urls)} files to fetch "
          f"({human_size(p.bytes)}); {p.cached} already cached"
          + (f"; {p.no_url} without a known URL" if p.no_url else ""))
    if estimate or not p.urls:
        return 0
    if why := unreachable(proxy, []):
        print(f"pkgcache precache: cannot start, the proxy does not answer: {why}", file=sys.stderr)
        return 2
    with TransferProgress("precache", verbose=verbose) as progress:
        failed = asyncio.run(download(p, proxy, jobs, progress))
    print(f"pkgcache precache: {progress.summary()}")
    record_run(store, "precache", {"selection": describe(selection), "fetched": len(p.urls) - len(failed),
                                   "failed": len(failed)})
    return 1 if failed else 0
