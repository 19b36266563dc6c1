"""What expire would do, decided from the cache model alone: pure, so it is tested without a cache.

A file no cached index references is an *orphan* from the first run that sees
it; it is due for deletion once it has been one for the grace period (or at
once with ``now``).  A file referenced again stops being an orphan; a pinned one never is one.  Nothing
under a repository root whose indexes failed to parse is touched: a broken
mirror must never empty the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pkgcache_suite.maintenance.model import CacheModel

DAY = 86400.0


@dataclass
class ExpirePlan:
    orphans: dict[str, float] = field(default_factory=dict)  # key -> orphan since (kept for the next run)
    due: list[str] = field(default_factory=list)  # orphans whose grace period is over
    refused_roots: dict[str, list[str]] = field(default_factory=dict)  # root -> why its indexes failed


def plan_expire(keys: Iterable[str], model: CacheModel, orphans_since: dict[str, float], now: float,
                grace_days: float, at_once: bool = False,
                pinned: Callable[[str], bool] = lambda _key: False) -> ExpirePlan:
    plan = ExpirePlan(refused_roots={r.root: r.errors for r in model.roots.values() if r.errors})
    for key in keys:
        owner = model.root_of(key)
        if owner is None or owner.root in plan.refused_roots or key in owner.refs or pinned(key):
            continue  # not under a modelled repository, its indexes are broken, it is referenced or pinned
        since = orphans_since.get(key, now)
        plan.orphans[key] = since
        if at_once or now - since >= grace_days * DAY:
            plan.due.append(key)
    return plan
