"""Human units, and progress output that ends full and prints per-file lines only for failures."""

from __future__ import annotations

import io

import pytest

from pkgcache_suite.progress import CountProgress, TransferProgress
from pkgcache_suite.units import human_duration, human_size, percent


@pytest.mark.parametrize("n,text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"),
                                    (3 << 30, "3.0 GiB"), (2 << 40, "2.0 TiB")])
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize("s,text", [(1.25, "1.2 s"), (75, "1 min 15 s"), (3725, "1 h 2 min"), (3 * 86400, "3 d 0 h")])
def test_human_duration(s: float, text: str) -> None:
    assert human_duration(s) == text


def test_percent() -> None:
    assert percent(1, 4) == "25.0%" and percent(0, 0) == "–"


def test_transfer_progress_prints_failures_tenths_and_a_summary() -> None:
    out = io.StringIO()
    with TransferProgress("precache", tty=False, out=out) as p:
        for i in range(10):
            p.expect(1, 1000)
        for i in range(10):
            p.advance(1000)
            p.finished(f"http://mirror.example/{i}.deb", ok=i != 3, note="HTTP 404" if i == 3 else "")
    lines = out.getvalue().splitlines()
    assert [ln for ln in lines if ln.startswith(("ok", "FAILED"))] == ["FAILED: http://mirror.example/3.deb (HTTP 404)"]
    assert lines[-1].startswith("precache: 100%")
    assert sum("%" in ln for ln in lines) == 10  # one line per tenth, not per file
    assert p.summary().startswith("9 files, 9.8 KiB in") and p.summary().endswith("1 failed")


def test_verbose_prints_every_file() -> None:
    out = io.StringIO()
    with TransferProgress("fetch", tty=False, verbose=True, out=out) as p:
        p.expect(2, None)
        p.finished("http://mirror.example/a", True)
        p.finished("http://mirror.example/b", True)
    assert out.getvalue().count("ok: ") == 2


def test_bars_on_a_terminal_end_at_100_percent() -> None:
    out = io.StringIO()
    with TransferProgress("fetch", tty=True, out=out) as p:
        p.expect(1, 4000)
        p.advance(1000)  # the server sent less than announced; the run is over anyway
        p.finished("http://mirror.example/a", True)
    assert p._bar is None
    count = CountProgress("expire", 50, tty=True, out=io.StringIO())
    count.advance(3)  # the rest were settled as a whole
    task = count._bar.tasks[0]
    count.close()
    assert task.completed == 50 and task.total == 50


def test_count_progress_without_a_terminal_ends_with_a_summary() -> None:
    out = io.StringIO()
    p = CountProgress("verify", 20, tty=False, out=out)
    for _ in range(20):
        p.advance()
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "verify: 20 files" and lines[-1].startswith("verify: 20 files in ")
    assert len(lines) <= 12
