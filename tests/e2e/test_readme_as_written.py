"""The README followed to the letter, copy-pasted, on the product's default options, as a new admin does.

The quick start's line is run in a copy of the checkout; its proxy then starts inside a network namespace
this test makes, whose hosts file names PROXY-HOST (this machine) and mirror.example (a plain HTTP server
on port 80 of a test address, as a real mirror is): the README's own lines then run unchanged, and the
proxy's default access rules (ports 80 and 443, no loopback destinations) apply.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.proxy import ROOT, wait_for

MIRROR_ADDRESS = "192.0.2.1"
PACKAGE = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def _sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=kw.pop("timeout", 60), **kw)
    if check:
        assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """A network namespace with loopback, a mirror's address on port 80, and the README's two names."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("the README test needs root and iproute2 (.ci/run installs them)")
    ns = f"pkgr{secrets.token_hex(3)}"
    etc = Path("/etc/netns") / ns
    _sh("ip", "netns", "add", ns)
    mirror = None
    try:
        etc.mkdir(parents=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost PROXY-HOST\n{MIRROR_ADDRESS} mirror.example\n")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns, "link", "add", "m0", "type", "veth", "peer", "name", "m1")
        _sh("ip", "-n", ns, "addr", "add", f"{MIRROR_ADDRESS}/24", "dev", "m0")
        for dev in ("m0", "m1"):
            _sh("ip", "-n", ns, "link", "set", dev, "up")
        files = tmp_path / "mirror"
        (files / PACKAGE.lstrip("/")).parent.mkdir(parents=True)
        (files / PACKAGE.lstrip("/")).write_bytes(os.urandom(150_000))
        mirror = subprocess.Popen(["ip", "netns", "exec", ns, shutil.which("python3") or "python3", "-m",
                                   "http.server", "80", "--bind", MIRROR_ADDRESS, "--directory", str(files)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _sh("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null",
                             f"http://mirror.example{PACKAGE}", check=False).returncode == 0, what="the mirror")
        yield ns
    finally:
        if mirror is not None:
            mirror.kill()
            mirror.wait(10)
        shutil.rmtree(etc, ignore_errors=True)
        _sh("ip", "netns", "del", ns, check=False)


def _in(ns: str, line: str, **kw) -> subprocess.CompletedProcess[str]:
    """One documented line, run as written by sh inside the site."""
    return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", line], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 60), **kw)


def test_the_readme_as_written_on_default_options(site: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    quick, tests_line, apt_line, check, *_ = _blocks(readme)
    assert tests_line.strip() == "bash .ci/run"  # what CI runs; it is not run from inside itself
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                  "build", "tests", "bench"))
    # the quick start's line: its setup part here (pip needs the machine's network), its start in the site
    setup, _, start = quick.strip().rpartition(" && ")
    assert start == ".venv/bin/pkgcache serve", quick
    r = subprocess.run(["sh", "-c", setup], cwd=checkout, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    proxy = subprocess.Popen(["ip", "netns", "exec", site, "sh", "-c", start], cwd=checkout, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proxy.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: any("pkgcache: ready" in ln for ln in lines) or proxy.poll() is not None, timeout=60,
                 what="the proxy to start: " + "\n".join(lines))
        said = next((ln for ln in lines if "pkgcache: ready" in ln), "\n".join(lines))
        assert "clients use http://PROXY-HOST:8080 as their proxy" in said, said
        assert (home / ".cache" / "pkgcache").is_dir()  # the embedded default
        # point a client: apt's line as written, its file kept in a private mount of apt's folder
        r = subprocess.run(["ip", "netns", "exec", site, "unshare", "-m", "sh", "-c",
                            "mount -t tmpfs none /etc/apt/apt.conf.d && " + apt_line.strip() + " >/dev/null && "
                            "apt-config dump Acquire::http::Proxy"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and 'Acquire::http::Proxy "http://PROXY-HOST:8080";' in r.stdout, \
            r.stdout + r.stderr
        # see a hit: the two lines as written
        first, second = [ln for ln in check.splitlines() if ln.strip()]
        outs = [_in(site, first).stdout, _in(site, second).stdout]
        assert [o.strip().lower() for o in outs] == ["x-cache: miss", "x-cache: hit"], (outs, lines)
        # the dashboard, and the client setup page's own check, as it shows it
        assert _in(site, "curl -s -o /dev/null -w '%{http_code}' http://PROXY-HOST:8080/").stdout == "200"
        page = html.unescape(_in(site, "curl -s http://PROXY-HOST:8080/setup").stdout)
        checks = re.findall(r"<pre>(curl -s -o /dev/null.*?)</pre>", page, re.S)
        assert checks, page
        for line in checks[0].splitlines():
            got = _in(site, line.replace("http://MIRROR/PATH/TO/A/PACKAGE", f"http://mirror.example{PACKAGE}"))
            assert got.stdout.strip().lower() == "x-cache: hit", got.stdout + got.stderr
    finally:
        os.killpg(proxy.pid, 15)
        proxy.wait(15)
    assert "Traceback" not in "\n".join(lines), "\n".join(lines)
