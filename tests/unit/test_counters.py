"""Counters on disk: shared by processes on one cache root, kept across restarts, by day."""

from __future__ import annotations

from pathlib import Path

from pkgcache_suite import stats as stats_mod
from pkgcache_suite.stats import Stats


def _hit(s: Stats, n: int = 1, client: str = "10.0.0.0/24") -> None:
    for _ in range(n):
        s.count("hit", "immutable", "mirror.example", from_cache=100, repo="mirror.example", client=client,
                url="http://mirror.example/a.deb")


def test_two_processes_add_to_one_total(tmp_path: Path) -> None:
    a, b = Stats(tmp_path), Stats(tmp_path)
    _hit(a, 3)
    _hit(b, 2, client="192.0.2.0/24")
    b.count("miss", "immutable", "mirror.example", from_upstream=1000, repo="mirror.example")
    b.flush()
    snap = a.snapshot()
    assert snap["total"]["hit"] == 5 and snap["total"]["miss"] == 1
    assert snap["total"]["bytes_from_cache"] == 500 and snap["total"]["bytes_from_upstream"] == 1000
    assert snap["by_client"]["10.0.0.0/24"]["hit"] == 3 and snap["by_client"]["192.0.2.0/24"]["hit"] == 2
    assert snap["by_repo"]["mirror.example"]["hit"] == 5
    assert len(snap["recent"]) == 5 and snap["recent"][0]["url"] == "http://mirror.example/a.deb"


def test_counters_survive_a_restart_with_their_daily_history(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(stats_mod, "today", lambda: "2026-11-24")
    first = Stats(tmp_path)
    _hit(first, 4)
    first.close()
    monkeypatch.setattr(stats_mod, "today", lambda: "2026-11-25")
    second = Stats(tmp_path)
    _hit(second, 1)
    snap = second.snapshot()
    assert snap["total"]["hit"] == 5
    assert {d: c["hit"] for d, c in snap["daily"].items()} == {"2026-11-24": 4, "2026-11-25": 1}
    assert snap["uptime"] < 60  # uptime is this process's; the totals are the cache's


def test_reset_clears_every_process_view(tmp_path: Path) -> None:
    a, b = Stats(tmp_path), Stats(tmp_path)
    _hit(a, 2)
    a.flush()
    b.reset()
    assert a.snapshot()["total"]["hit"] == 0


def test_without_a_root_counters_stay_in_memory_and_move_to_disk_when_attached(tmp_path: Path) -> None:
    s = Stats()
    _hit(s, 2)
    assert s.snapshot()["total"]["hit"] == 2
    s.attach(tmp_path)
    _hit(s, 1)
    s.flush()  # what the proxy's housekeeping does every second
    assert Stats(tmp_path).snapshot()["total"]["hit"] == 3


def test_an_unusable_root_keeps_counting_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = Stats(blocker)  # not a directory: cannot hold the counters file
    _hit(s, 1)
    assert s.store is None and s.snapshot()["total"]["hit"] == 1
