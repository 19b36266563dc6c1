"""The lines `pkgcache fetch` ends with: counts, the indexes chosen per suite, each stated request's outcome."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pkgcache_suite.units import human_size

if TYPE_CHECKING:
    from pkgcache_suite.stick.fetch import Outcome


PACKAGE_FILE = re.compile(r"\.(deb|udeb|ddeb|rpm|apk|whl|tgz|zip|tar\.[a-z0-9]+|pkg\.tar\.[a-z0-9]+)$")


def absent(out: Outcome, wanted: set[str], probed: set[str], manifest_failed: dict[str, Any]) -> dict[str, str]:
    """Misses a client probed, and the probes fetch made for it, that upstream says do not exist (zypper's
    content file, a repository's key): settled, not failures.  A package file, or a file an index or the
    resolver named, is never in this set."""
    needed = (set(out.expanded) - probed) | {u for urls in out.resolved.values() for u in urls}
    return {u: why for u, why in out.failed.items()
            if u in wanted | probed and u not in needed and why.startswith(("HTTP 404", "HTTP 410"))
            and not PACKAGE_FILE.search(u.split("?", 1)[0])
            and isinstance(manifest_failed.get(u), dict) and manifest_failed[u].get("permanent")}


def print_outcome(out: Outcome, summary: str, ignored: list[str], gone: dict[str, str]) -> None:
    """What a fetch did, what it chose and why, and what it could not do, as lines an admin reads.  A file
    that was needed and upstream says does not exist is a failure, and is called what it is."""
    missing = {u for u, why in out.failed.items() if u not in gone and why.startswith(("HTTP 404", "HTTP 410"))}
    print(f"pkgcache fetch: {len(out.fetched)} fetched ({human_size(out.bytes)}, {len(out.expanded)} of them indexes "
          f"named by a fetched Release or repomd.xml), {len(out.present)} already in the datastore, "
          f"{len(out.skipped)} skipped (not in their Release), {len(gone)} probes not found upstream, "
          f"{len(missing)} needed files not found upstream, {len(out.failed) - len(gone) - len(missing)} other "
          f"failures; {summary}")
    for base, why in sorted(out.choices.items()):
        print(f"  indexes of {base}: {why}")
    for url, plain in sorted(out.fell_back.items()):
        print(f"  by-hash object missing upstream: {url}; fetched {plain} instead, its size and SHA-256 "
              "checked against the Release (as apt falls back)")
    for rid, urls in out.resolved.items():
        problems = out.unresolved.get(rid, {})
        print(f"  request {rid}: {len(urls)} package files resolved"
              + (f"; NOT RESOLVED: {len(problems)}" if problems else ""))
        for what, why in problems.items():
            print(f"    {'all packages' if what == '*' else what}: {why}")
    for why in ignored:
        print(f"  ignored a stated request: {why}")
    for url, why in sorted(gone.items()):
        print(f"  not found upstream (a client's probe; it is told so): {url}: {why}")
    for url, why in sorted(out.failed.items()):
        if url in missing:
            print(f"  NOT FOUND UPSTREAM {url}: {why}")
        elif url not in gone:
            print(f"  FAILED {url}: {why}")
