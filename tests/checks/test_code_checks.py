"""Checks that keep the code base in shape: complexity, module size, and product text that speaks of the product."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "addons" / "pkgcache_suite"
MAX_LINES = 400
MAX_COMPLEXITY = 15
# words of how the product is built, not of the product: they have no place in its help, docs or comments
LEAKED = re.compile("|".join([r"later\s+issues?", r"\bissue\s+#?\d+", r"\btask\s+\d+", r"\bsession\b", r"\bCEO\b",
                               r"developers'?\s+guide"]), re.IGNORECASE)
PRODUCT_TEXT = [SUITE, ROOT / "addons" / "pkgcache.py", ROOT / "README.md", ROOT / "recipes", ROOT / "docs",
                ROOT / "conf", ROOT / "pyproject.toml"]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return subprocess.run([ruff, "check", "--no-cache", *args], capture_output=True, text=True, timeout=300)


def test_ruff_complexity_of_the_product() -> None:
    r = _ruff("--select", "C901,F,E9", "--config", f"lint.mccabe.max-complexity={MAX_COMPLEXITY}",
              str(ROOT / "addons"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_errors_in_tests_and_benchmarks() -> None:
    r = _ruff("--select", "F,E9", str(ROOT / "tests"), str(ROOT / "bench"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_module_over_the_line_limit() -> None:
    big = {str(p.relative_to(ROOT)): n for p in SUITE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"


def test_product_text_speaks_of_the_product_only() -> None:
    hits = []
    for top in PRODUCT_TEXT:
        for p in [top] if top.is_file() else [q for q in top.rglob("*") if q.is_file()]:
            if p.suffix in (".pyc",) or "__pycache__" in p.parts or ".egg-info" in str(p):
                continue
            for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
                if LEAKED.search(line):
                    hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []


def test_help_speaks_of_the_product_only() -> None:
    r = subprocess.run([sys.executable, "-m", "pkgcache_suite.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "pkgcache" in r.stdout
    assert not LEAKED.search(r.stdout)


def test_the_readme_shows_the_statement_lines_the_page_shows() -> None:
    """The one-line statements are documented as the product prints them (and as the e2e tests run them)."""
    from pkgcache_suite.proxy.wantpage import one_liner, rpm_one_liner

    readme, offline = (ROOT / "README.md").read_text(), (ROOT / "docs" / "offline.md").read_text()
    assert one_liner("http://PROXY-HOST:8080") in readme and one_liner("http://PROXY-HOST:8080") in offline
    assert rpm_one_liner("http://PROXY-HOST:8080") in offline
