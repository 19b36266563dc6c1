"""Debian's Chromium, headless, as a person's browser: the page's DOM after rendering, and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server"]  # a plain browser, not set up to use any proxy


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium is needed (.ci/run installs it)"
    return exe


def dump_dom(url: str, screenshot: Path | None = None) -> str:
    """The rendered DOM of url (and a screenshot of it, when asked)."""
    with tempfile.TemporaryDirectory() as profile:
        base = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600"]
        if screenshot is not None:
            subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=90, check=True)
        r = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True)
    return r.stdout
