"""What expire plans, from a cache model alone (no cache on disk)."""

from __future__ import annotations

from pkgcache_suite.maintenance.model import CacheModel, Ref, RootModel
from pkgcache_suite.maintenance.plan import DAY, plan_expire

NOW = 1_000_000.0


def _model(errors: list[str] | None = None) -> CacheModel:
    root = RootModel(root="m/debian", family="debian", errors=errors or [])
    root.refs["m/debian/pool/a.deb"] = Ref(1, "aa", "m/debian/dists/x/main/binary-amd64/Packages")
    return CacheModel(roots={"m/debian": root})


def test_referenced_files_and_files_outside_any_repository_are_kept() -> None:
    plan = plan_expire(["m/debian/pool/a.deb", "other/file"], _model(), {}, NOW, 4)
    assert plan.orphans == {} and plan.due == []


def test_an_orphan_is_due_only_after_the_grace_period() -> None:
    keys = ["m/debian/pool/b.deb", "m/debian/pool/c.deb"]
    plan = plan_expire(keys, _model(), {"m/debian/pool/c.deb": NOW - 5 * DAY}, NOW, 4)
    assert plan.orphans == {"m/debian/pool/b.deb": NOW, "m/debian/pool/c.deb": NOW - 5 * DAY}
    assert plan.due == ["m/debian/pool/c.deb"]


def test_at_once_skips_the_grace_period() -> None:
    assert plan_expire(["m/debian/pool/b.deb"], _model(), {}, NOW, 4, at_once=True).due == ["m/debian/pool/b.deb"]


def test_nothing_under_a_root_with_broken_indexes_is_touched() -> None:
    plan = plan_expire(["m/debian/pool/b.deb"], _model(["Packages: cannot parse"]), {}, NOW, 4, at_once=True)
    assert plan.due == [] and plan.refused_roots == {"m/debian": ["Packages: cannot parse"]}
