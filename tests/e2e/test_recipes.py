"""The Docker and CI-runner recipes, as written, as far as this machine can run them.

No Docker engine runs here, so the Docker build is represented by what it gives
each RUN step: the recipe's build arguments become that step's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support.ecosystems import serve_npm, serve_pypi
from support.origin import Origin
from support.recipes import block


def _pip_download(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = out.parent / f"{out.name}-home"
    env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy") and not k.startswith("PIP_")},
           "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), **env}
    return subprocess.run([sys.executable, "-m", "pip", "download", "demo", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "--retries", "0", "-d", str(out), *args],
                          capture_output=True, text=True, timeout=180, env=env)


def test_docker_build_args_send_a_builds_downloads_through_pkgcache(origin: Origin, proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin)
    command = block("docker.md", 0, proxy.url.removeprefix("http://"))
    env = dict(re.findall(r"--build-arg (\w+)=(\S+)", command))
    assert env["http_proxy"] == proxy.url
    r = _pip_download(env, tmp_path / "build", "--index-url", f"{origin.base}/simple/",
                      "--trusted-host", f"127.0.0.1:{origin.port}")
    assert r.returncode == 0, r.stderr
    with proxy.client() as c:
        assert c.get(origin.base + wheel).headers["x-cache"] == "HIT"  # the build's download was cached
    daemon = json.loads(block("docker.md", 1, proxy.url.removeprefix("http://")))
    assert daemon["proxies"]["http-proxy"] == proxy.url


def test_ci_runner_variables_as_written(origin: Origin, proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin)
    tarball = serve_npm(origin)
    text = block("ci.md", 0, proxy.url.removeprefix("http://"), f"127.0.0.1:{origin.port}")
    env = dict(re.findall(r'^\s+(\w+): "([^"]*)"$', text, re.M))
    for job in ("first", "second"):
        r = _pip_download(env, tmp_path / job)
        assert r.returncode == 0, r.stderr
        n = subprocess.run(["npm", "install", "demo-pkg", "--cache", str(tmp_path / job / "npm-cache"), "--prefix",
                            str(tmp_path / job / "project"), "--no-audit", "--no-fund", "--no-package-lock",
                            "--userconfig", str(tmp_path / job / "npmrc")],
                           capture_output=True, text=True, timeout=180,
                           env={**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy")}, **env})
        assert n.returncode == 0, n.stderr
    assert origin.count(wheel) == 1 and origin.count(tarball) == 1
