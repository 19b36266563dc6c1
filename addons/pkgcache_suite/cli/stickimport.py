"""``pkgcache import --datastore STICK``: an admin takes a whole stick into the cache on purpose.

The proxy takes from a stick only what the site has a use for (its wanted list, the repositories it
states, the origins it caches).  An admin who hands over a stick prepared elsewhere says so with this
command: every entry is still verified (no link followed, its size and SHA-256, no contradiction with a
cached index, the stick's dates clamped), but none is refused for being unasked.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pkgcache_suite.stick.datastore import Datastore, DatastoreError
from pkgcache_suite.stick.importer import import_datastore, write_report
from pkgcache_suite.policy.rules import Classifier, RulesError
from pkgcache_suite.settings.parsers import parse_keyrings
from pkgcache_suite.storage import CacheStore


def run_stick_import(store: CacheStore, stick: Path, rules: Path | None, keyrings: str = "") -> int:
    """0 when every entry was taken or already cached; 1 when some were refused; 2 when the stick is unusable."""
    try:
        ds, _ = Datastore.open(stick, create=False)
        classifier = Classifier(rules)
        rings = parse_keyrings("--keyrings", keyrings)
    except (DatastoreError, RulesError, ValueError) as e:
        print(f"pkgcache import: {e}", file=sys.stderr)
        return 2
    res = import_datastore(store, classifier, ds, asked=None, keyrings=rings)
    write_report(ds, res)
    for url in res.imported:
        print(f"imported {url}")
    for url, why in res.rejected.items():
        print(f"REFUSED {url}: {why}")
    print(f"pkgcache import: {len(res.imported)} imported, {len(res.already)} already cached, "
          f"{len(res.rejected)} refused, {len(res.busy)} being downloaded (left for the proxy)")
    if res.error:
        print(f"pkgcache import: {res.error}", file=sys.stderr)
        return 2
    return 1 if res.rejected else 0
