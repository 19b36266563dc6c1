"""The system service recipe as written (conf/systemd, conf/logrotate): systemd accepts the units, the
service's command line with its environment starts a working cache, the maintenance unit's commands run on
that cache, and logrotate rotates a file log.

systemd is not PID 1 here, so the units are checked by `systemd-analyze verify` and their Exec lines run
directly, with the paths moved under the test's folder (the venv's bin for /opt/pkgcache/bin). The
service's own user is not switched to: that part is systemd's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from support.origin import Origin
from support.proxy import ROOT, wait_for
from support.recipes import block
from support.tier import free_port

UNITS = ROOT / "conf" / "systemd"
DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe's install lines as written: a virtual environment in /opt/pkgcache (here under the test's
    folder) and a plain, non-editable ``pip install .`` from a checkout (here a copy of this one)."""
    work = tmp_path_factory.mktemp("opt")
    checkout = work / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                  "build", "tests", "bench"))
    lines = [ln for ln in block("systemd.md", 0).splitlines() if "/opt/pkgcache" in ln and "pip" in ln
             or "venv /opt/pkgcache" in ln]
    assert len(lines) == 2, lines
    for line in lines:
        command = line.split("#", 1)[0].replace("sudo ", "").replace("/opt/pkgcache", str(work / "pkgcache"))
        r = subprocess.run(command, shell=True, cwd=checkout, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{command}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return work / "pkgcache"


def _moved(text: str, tmp: Path, port: int, opt: Path) -> str:
    return (text.replace("/opt/pkgcache/", f"{opt}/").replace("/var/cache/pkgcache", str(tmp / "cache"))
            .replace("/var/lib/pkgcache", str(tmp / "state")).replace("8080", str(port)))


def _unit(name: str) -> tuple[dict[str, str], list[str]]:
    """A unit's Environment= and its ExecStart= lines."""
    text = (UNITS / name).read_text()
    env = dict(m.split("=", 1) for m in re.findall(r"^Environment=(\S+)$", text, re.M))
    return env, re.findall(r"^ExecStart=(.+)$", text, re.M)


def test_systemd_accepts_the_units(tmp_path: Path, opt: Path) -> None:
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/pkgcache/", f"{opt}/"))
    r = subprocess.run(["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    service = (UNITS / "pkgcache.service").read_text()
    assert "User=pkgcache" in service and "CacheDirectory=pkgcache" in service
    assert "StandardOutput=journal" in service
    timer = (UNITS / "pkgcache-maintenance.timer").read_text()
    assert "OnCalendar=daily" in timer and "Persistent=true" in timer


def test_the_service_command_line_runs_a_cache_and_maintenance_runs_on_it(origin: Origin, tmp_path: Path,
                                                                          opt: Path) -> None:
    """The unit's command line from the non-editable install, on the product's defaults except that the
    test's origin is on loopback and a random port."""
    port = free_port()
    env, (start,) = _unit("pkgcache.service")
    (tmp_path / "cache").mkdir()  # what CacheDirectory= and StateDirectory= create
    (tmp_path / "state").mkdir()
    run_env = {**os.environ, **{k: _moved(v, tmp_path, port, opt) for k, v in env.items()}}
    argv = _moved(start, tmp_path, port, opt).split() + ["--set", "pkgcache_allow_loopback=true",
                                                     "--set", "pkgcache_allow_ports=0"]  # the test's origin
    proc = subprocess.Popen(argv, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: any("pkgcache: ready" in ln for ln in lines), timeout=30, what="the service to start")
        assert any(f"dashboard at http://PROXY-HOST:{port}/" in ln for ln in lines)
        origin.put(DEB, b"h" * 50_000)
        # the check the recipe gives, as written, against the test's origin
        check = next(ln for ln in block("systemd.md", 1).splitlines() if ln.startswith("curl"))
        check = check.split("   #", 1)[0].replace("http://127.0.0.1:8080", f"http://127.0.0.1:{port}") \
            .replace("http://mirror.example/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", origin.base + DEB)
        assert origin.base in check, check
        first = subprocess.run(check, shell=True, capture_output=True, text=True, timeout=30).stdout
        second = subprocess.run(check, shell=True, capture_output=True, text=True, timeout=30).stdout
        assert re.search(r"(?im)^x-cache: MISS", first) and re.search(r"(?im)^x-cache: HIT", second)
        assert httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).status_code == 200  # the dashboard
        assert list((tmp_path / "cache").rglob("hello_1.0_amd64.deb"))  # the cache is where the unit says
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    menv, commands = _unit("pkgcache-maintenance.service")
    assert [c.split()[1] for c in commands] == ["expire", "verify"]
    for command in commands:
        r = subprocess.run(_moved(command, tmp_path, port, opt).split(), capture_output=True, text=True, timeout=120,
                           env={**os.environ, **{k: _moved(v, tmp_path, port, opt) for k, v in menv.items()}})
        assert r.returncode == 0, r.stdout + r.stderr


def test_logrotate_rotates_a_file_log_as_written(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    conf = tmp_path / "pkgcache.logrotate"
    conf.write_text((ROOT / "conf" / "logrotate" / "pkgcache").read_text().replace("/var/log/pkgcache", str(logs)))
    (logs / "pkgcache.log").write_text("pkgcache: ready\n" * 100)
    r = subprocess.run(["logrotate", "--state", str(tmp_path / "state"), "--force", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (logs / "pkgcache.log.1").read_text().startswith("pkgcache: ready")
    assert (logs / "pkgcache.log").stat().st_size == 0  # truncated in place: the writer keeps its file
