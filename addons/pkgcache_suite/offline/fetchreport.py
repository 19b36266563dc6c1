"""The lines `pkgcache fetch` ends with: counts, the indexes chosen per suite, each stated request's outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkgcache_suite.units import human_size

if TYPE_CHECKING:
    from pkgcache_suite.offline.fetch import Outcome


def print_outcome(out: Outcome, summary: str, ignored: list[str]) -> None:
    """What a fetch did, what it chose and why, and what it could not do, as lines an admin reads."""
    print(f"pkgcache fetch: {len(out.fetched)} fetched ({human_size(out.bytes)}, {len(out.expanded)} of them indexes "
          f"named by a fetched Release), {len(out.present)} already in the datastore, "
          f"{len(out.skipped)} skipped (not in their Release), {len(out.failed)} failed; {summary}")
    for base, why in sorted(out.choices.items()):
        print(f"  indexes of {base}: {why}")
    for rid, urls in out.resolved.items():
        problems = out.unresolved.get(rid, {})
        print(f"  request {rid}: {len(urls)} package files resolved"
              + (f"; NOT RESOLVED: {len(problems)}" if problems else ""))
        for what, why in problems.items():
            print(f"    {'all packages' if what == '*' else what}: {why}")
    for why in ignored:
        print(f"  ignored a stated request: {why}")
    for url, why in sorted(out.failed.items()):
        print(f"  FAILED {url}: {why}")
