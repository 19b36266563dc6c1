"""pip and npm configured as their recipes say, for the tests that drive them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.origin import Origin


def _pip(proxy, origin: Origin, out: Path) -> subprocess.CompletedProcess[str]:
    """pip configured by recipes/python.md's first block, as written, then a download."""
    from support.recipes import block

    home = out.parent / f"{out.name}-home"  # `pip config set` writes the user's file: a user of our own
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env.pop("PIP_CONFIG_FILE", None)
    for line in block("python.md", 0, proxy.url.removeprefix("http://"), f"127.0.0.1:{origin.port}").splitlines():
        if line.strip():
            subprocess.run(line.replace("pip ", f"{sys.executable} -m pip ", 1), shell=True, check=True, env=env,
                           capture_output=True)
    return subprocess.run([sys.executable, "-m", "pip", "download", "demo", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "--retries", "0", "--timeout", "30", "-d", str(out)],
                          capture_output=True, text=True, timeout=180, env=env)


def _npm(proxy, origin: Origin, work: Path) -> subprocess.CompletedProcess[str]:
    """npm configured by recipes/npm.md's first block, as written, then an install with an empty npm cache."""
    from support.recipes import block

    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "npm_config_userconfig": str(work / "npmrc")}
    for line in block("npm.md", 0, proxy.url.removeprefix("http://"), f"127.0.0.1:{origin.port}").splitlines():
        if line.strip():
            subprocess.run(line, shell=True, check=True, env=env, capture_output=True)
    return subprocess.run(["npm", "install", "demo-pkg", "--cache", str(work / "npm-cache"),
                           "--prefix", str(work / "project"), "--no-audit", "--no-fund", "--no-package-lock",
                           "--fetch-retries", "0"], capture_output=True, text=True, timeout=180, env=env)
