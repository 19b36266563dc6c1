"""Fixtures that start real parts: an origin on 127.0.0.1 and mitmdump with the pkgcache suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from origin import Origin  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "addons" / "pkgcache.py"
_LISTEN = re.compile(r"listening at .*?:(\d+)")


class Proxy:
    """A mitmdump subprocess; its output is collected so tests can assert on log lines."""

    def __init__(self, cache_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 preexec_fn=None) -> None:
        self.cache_dir = cache_dir
        self.lines: list[str] = []
        cmd = [_mitmdump(), "-s", str(ENTRY), "--set", f"pkgcache_dir={cache_dir}", *extra]
        if "--mode" not in extra:
            cmd += ["--listen-host", "127.0.0.1", "--listen-port", "0"]
        if not any(str(a).startswith("pkgcache_allow_ports=") for a in extra):
            cmd += ["--set", "pkgcache_allow_ports=0"]  # test origins listen on random ports
        if not any(str(a).startswith("pkgcache_allow_loopback=") for a in extra):
            cmd += ["--set", "pkgcache_allow_loopback=true"]  # ... on 127.0.0.1
        if not any(str(a).startswith("pkgcache_datastore=") for a in extra):
            cmd += ["--set", f"pkgcache_datastore={cache_dir.parent / (cache_dir.name + '-datastore')}"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})}, preexec_fn=preexec_fn,
        )
        self.port = 0
        self.ports: list[int] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or not self.port:
            self.stop()
            raise RuntimeError("mitmdump did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = _LISTEN.search(line)
            if m:
                self.ports.append(int(m.group(1)))
                if not self.port:
                    self.port = int(m.group(1))
                    self._ready.set()
        self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> httpx.Client:
        kw.setdefault("timeout", 60)
        return httpx.Client(proxy=self.url, trust_env=False, **kw)

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def rss_peak_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def _mitmdump() -> str:
    exe = Path(sys.executable).with_name("mitmdump")
    return str(exe) if exe.exists() else "mitmdump"


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Origin]:
    (tmp_path / "origin").mkdir()
    o = Origin(tmp_path / "origin").start()
    yield o
    o.stop()


@pytest.fixture
def start_proxy(tmp_path: Path):
    started: list[Proxy] = []

    def start(*extra: str, cache_dir: Path | None = None, **kw) -> Proxy:
        p = Proxy(cache_dir or tmp_path / "cache", *extra, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
    for p in started:  # an addon exception makes mitmproxy skip our hook: a silent wrong answer
        assert "Addon error" not in p.log_text(), p.log_text()


@pytest.fixture
def proxy(start_proxy) -> Proxy:
    return start_proxy()


@pytest.fixture
def apt_tools() -> None:
    """Tests that drive a real apt-get fail (not skip) when its tools are missing: .ci/run installs them."""
    import shutil

    missing = [t for t in ("apt-get", "apt-ftparchive", "dpkg-deb", "gpg", "xz") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run .ci/run, which installs them")


def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
