"""A real mitmdump with the pkgcache suite loaded, as the tests and benchmarks start it."""

from __future__ import annotations

import json

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "addons" / "pkgcache.py"
_LISTEN = re.compile(r"listening at .*?:(\d+)")


def make_datastores(args: list[str]) -> None:
    """The folders the tests name as datastores are made first, as an admin makes a datastore folder
    (pkgcache refuses to create one that is not there)."""
    for a in args:
        value = str(a).partition("pkgcache_datastore=")[2] if str(a).startswith("pkgcache_datastore=") else ""
        if value and value != "usb":
            Path(value).mkdir(parents=True, exist_ok=True)


class Proxy:
    """A mitmdump subprocess; its output is collected so tests can assert on log lines."""

    def __init__(self, cache_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 preexec_fn=None, entry: Path = ENTRY, relaxed: bool = True) -> None:
        """relaxed: let clients name any port and loopback (the test origins listen on 127.0.0.1, on random
        ports); False runs on the product's defaults."""
        self.cache_dir = cache_dir
        self.lines: list[str] = []
        cmd = [mitmdump(), "-s", str(entry), "--set", f"pkgcache_dir={cache_dir}", *extra]
        if "--mode" not in extra:
            cmd += ["--listen-host", "127.0.0.1", "--listen-port", "0"]
        if relaxed and not any(str(a).startswith("pkgcache_allow_ports=") for a in extra):
            cmd += ["--set", "pkgcache_allow_ports=0"]  # test origins listen on random ports
        if relaxed and not any(str(a).startswith("pkgcache_allow_loopback=") for a in extra):
            cmd += ["--set", "pkgcache_allow_loopback=true"]  # ... on 127.0.0.1
        if not any(str(a).startswith("pkgcache_datastore=") for a in extra):
            cmd += ["--set", f"pkgcache_datastore={cache_dir.parent / (cache_dir.name + '-datastore')}"]
        make_datastores(cmd)
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


def mitmdump() -> str:
    exe = Path(sys.executable).with_name("mitmdump")
    return str(exe) if exe.exists() else "mitmdump"


def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def fetch_digest(proxy: Proxy, url: str) -> tuple[int, str, int]:
    """(status, SHA-256, size) of what the proxy sends for url, read as it streams."""
    import hashlib

    h = hashlib.sha256()
    n = 0
    with proxy.client() as c, c.stream("GET", url) as r:
        for chunk in r.iter_raw():
            h.update(chunk)
            n += len(chunk)
        return r.status_code, h.hexdigest(), n


def wanted_urls(ds: Path) -> list[str]:
    """The URLs a datastore's wanted list names (none before the list is written)."""
    try:
        return [w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]]
    except FileNotFoundError:
        return []


def one_trip(ds: Path, origin, client, what: str) -> int:
    """Run client() (a CompletedProcess) offline until it succeeds; each failure is a trip: the wanted list
    is written, `pkgcache fetch` fills the datastore with the origin back, the proxy imports it.  Returns the
    trips taken (the tests assert how many); more than one trip fails at once."""
    trips = 0
    while (r := client(trips)).returncode != 0:
        assert trips < 1, (r.stdout + r.stderr)[-3000:]
        wait_for(lambda: wanted_urls(ds) != [], what=f"the wanted list naming what {what} missed")
        origin.restart()
        f = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
        assert f.returncode == 0, f.stdout + f.stderr
        origin.stop()
        wait_for(lambda: wanted_urls(ds) == [], timeout=30, what="the import of the fetched files")
        trips += 1
    return trips
