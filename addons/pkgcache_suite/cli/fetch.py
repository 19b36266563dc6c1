"""`pkgcache fetch DATASTORE`: read a datastore's wanted list and stated requests, fetch, print the outcome.

The exit status is what a script needs: 0 when everything that exists came
and every stated request resolved, 1 otherwise, 2 when fetch could not start.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

from pkgcache_suite.resolve import indexplan
from pkgcache_suite.stick import fetchreport
from pkgcache_suite.wanted import requested
from pkgcache_suite.stick.datastore import Datastore, DatastoreError
from pkgcache_suite.stick.fetch import Fetcher
from pkgcache_suite.trust import client_context


def run_fetch(path: Path, proxy: str | None, jobs: int, retries: int, expand: bool,
              archs: list[str] | None, verbose: bool = False, everything: bool = False,
              cacert: str | None = None) -> int:
    from pkgcache_suite.cli.preflight import unreachable

    try:
        tls = client_context(cacert)
    except (OSError, ssl.SSLError) as e:
        print(f"pkgcache fetch: --cacert {cacert}: cannot read certificates: {e}", file=sys.stderr)
        return 2
    if Datastore.is_stick_root(path):
        print(f"pkgcache fetch: {path} is the stick; its datastore is {path / 'pkgcache'}", file=sys.stderr)
        return 2
    try:
        ds, created = Datastore.open(path, create=False)
        doc = ds.read_wanted_doc()
    except DatastoreError as e:
        print(f"pkgcache fetch: {e}", file=sys.stderr)
        return 2
    wanted = [w for w in doc.get("wanted", []) if isinstance(w, dict) and isinstance(w.get("url"), str)]
    requests, ignored = requested.read_requests(doc)
    hints = doc.get("hints") or {}
    archs = archs or hints.get("deb_arch") or None
    urls = [w["url"] for w in wanted] + requested.first_urls(requests)
    if urls and (why := unreachable(proxy, urls)):
        print(f"pkgcache fetch: cannot start, nothing answers: {why}", file=sys.stderr)
        return 2
    f = Fetcher(ds, proxy=proxy, jobs=jobs, retries=retries, expand=expand, archs=archs, verbose=verbose,
                requests=requests, usage=indexplan.usage_from_hints(hints), everything=everything, tls=tls)
    out = asyncio.run(f.run(wanted))
    gone = fetchreport.absent(out, {w["url"] for w in wanted}, f.probed, f.manifest["failed"])
    fetchreport.print_outcome(out, f.summary, ignored, gone)
    return 1 if set(out.failed) - set(gone) or out.unresolved else 0
