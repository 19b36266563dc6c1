"""`pkgcache serve --workers N` as the tests start it: HAProxy and nginx in front of N workers, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from pkgcache_suite.tier.supervisor import free_port
from support.proxy import make_datastores, wait_for



class TierProcess:
    def __init__(self, cache_dir: Path, workers: int = 2, *extra: str) -> None:
        self.cache_dir, self.port = cache_dir, free_port()
        self.lines: list[str] = []
        exe = str(Path(sys.executable).with_name("pkgcache"))
        defaults = [a for name, a in (("pkgcache_allow_ports", "pkgcache_allow_ports=0"),
                                      ("pkgcache_allow_loopback", "pkgcache_allow_loopback=true"),
                                      ("pkgcache_datastore", f"pkgcache_datastore={cache_dir}-datastore"))
                    if not any(str(e).startswith(name + "=") for e in extra)]
        sets = [x for d in defaults for x in ("--set", d)]
        make_datastores([*sets, *extra])
        self.proc = subprocess.Popen([exe, "--cache-dir", str(cache_dir), "serve", "--workers", str(workers),
                                      "--listen-host", "127.0.0.1", "--listen-port", str(self.port), *sets, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()  # type: ignore
        try:
            wait_for(lambda: "pkgcache: ready" in self.log_text() or self.proc.poll() is not None, timeout=90,
                     what="the tier to start")
        finally:
            if "pkgcache: ready" not in self.log_text():
                self.stop()
        assert "pkgcache: ready" in self.log_text(), self.log_text()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> httpx.Client:
        kw.setdefault("timeout", 30)
        return httpx.Client(proxy=self.url, trust_env=False, **kw)

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def worker_pids(self) -> list[int]:
        """The mitmdump workers (children of the supervisor)."""
        out = subprocess.run(["pgrep", "-f", f"pkgcache_dir={self.cache_dir}"], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split() if int(p) != self.proc.pid and self._is_worker(int(p))]

    @staticmethod
    def _is_worker(pid: int) -> bool:
        try:
            return "mitmdump" in Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            return False

    def front_hits(self) -> list[str]:
        path = self.cache_dir / ".pkgcache" / "tier" / "front-hits.log"
        return path.read_text().splitlines() if path.exists() else []

    def front_fetches(self) -> list[str]:
        """nginx's line per miss it fetched and stored for a worker."""
        path = self.cache_dir / ".pkgcache" / "tier" / "front-fetch.log"
        return path.read_text().splitlines() if path.exists() else []

    def landing(self) -> list[Path]:
        path = self.cache_dir / ".pkgcache" / "tier" / "landing"
        return [p for p in path.iterdir() if p.is_file()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        subprocess.run(["pkill", "-f", f"{self.cache_dir}/.pkgcache/tier/"], capture_output=True)


def served_by_front(tier: TierProcess, request):
    """(response, whether the front answered it by itself): its hit log grows by one line when it did."""
    import time

    before = len(tier.front_hits())
    r = request()
    end = time.monotonic() + 1.0
    while len(tier.front_hits()) == before and time.monotonic() < end:
        time.sleep(0.02)  # nginx writes the line as the response ends
    return r, len(tier.front_hits()) > before

