"""The suite is typed: keep it so (mypy finds no issues)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_finds_no_issues() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
                        str(ROOT / "addons" / "pkgcache_suite")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
