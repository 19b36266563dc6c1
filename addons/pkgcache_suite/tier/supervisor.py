"""`pkgcache serve --workers N`: start HAProxy, nginx and N pkgcache workers, keep them running, stop them
together.

The workers are the embedded proxy (mitmdump with the suite) on loopback
ports, sharing one cache root, trusting the front's X-Forwarded-For.  A worker
that dies is started again on its port; meanwhile HAProxy and nginx send its
share to the others (its health check fails, a refused connection is retried
elsewhere).  The supervisor also reads the front's hit log into the shared
counters.  It is a process manager, not a server: no request passes through it.
"""

from __future__ import annotations

import logging
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pkgcache_suite.repos.config import parse_conf
from pkgcache_suite.stats import Stats
from pkgcache_suite.storage import PRIVATE, CacheStore, StoreError, republish
from pkgcache_suite.storage.liveness import Liveness
from pkgcache_suite.settings import parse_bounded
from pkgcache_suite.tier.args import TierArgs, TierArgsError, split_args
from pkgcache_suite.tier.config import Tier, haproxy_cfg, nginx_conf
from pkgcache_suite.tier.frontlog import FrontLog, rotate_if_large
from pkgcache_suite.tier.grants import sweep_grants
from pkgcache_suite.tier.landing import sweep_landing

log = logging.getLogger("pkgcache")

POLL = 0.5
START_TIMEOUT = 60.0
SWEEP_EVERY = 60.0  # files nginx stored for a worker that died before taking them are removed this often
CRASH_LIMIT, CRASH_WINDOW = 5, 60  # a child that dies more often than this is broken, not unlucky


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = START_TIMEOUT,
                   host: str = "127.0.0.1") -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int
    proc: subprocess.Popen[str] | None = None
    restarts: int = 0
    deaths: list[float] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)  # removed before each start (a killed nginx's socket)

    def start(self) -> None:
        if self.proc is not None:  # what a dead child left running (nginx's worker processes keep its sockets)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for path in self.leftovers:
            path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._relay, args=(self.proc,), daemon=True, name=f"{self.name} output").start()

    def _relay(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(f"{self.name}: {line}")
            sys.stdout.flush()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Supervisor:
    root: Path
    workers: int
    args: TierArgs
    mitmdump: str
    entry: Path
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    failed: bool = False  # a child kept dying: the tier stopped
    republishing: bool = False  # the published tree is re-linked after start (see _republish)

    def _needs_republish(self, store: CacheStore) -> bool:
        """The published tree is kept in step by every process that commits or drops a file once it exists; it
        is re-linked only when it is new, or when a process serving the cache died mid-run."""
        return not store.published.root.is_dir() or Liveness(self.root / PRIVATE).needs_check()

    def _republish(self) -> None:
        """On a thread of the supervisor, after start: until it is through, nginx passes what is not linked
        yet to the workers (slower, never wrong), so the tier is ready at once whatever the cache's size."""
        try:
            store = CacheStore(self.root)
        except StoreError as e:
            log.error("pkgcache: re-linking the published tree failed: %s", e)
            return
        try:
            counts = republish(store)
            log.info("pkgcache: published tree ready (%d linked, %d stale links removed)", counts["published"],
                     counts["removed"])
        except Exception as e:
            log.error("pkgcache: re-linking the published tree failed: %s", e)
        finally:
            store.close()

    def tier(self) -> Tier:
        store = CacheStore(self.root)
        try:
            self.republishing = self._needs_republish(store)
            store.published.enable()
        finally:
            store.close()
        run = self.root / PRIVATE / "tier"
        run.mkdir(parents=True, exist_ok=True)
        conf = self.args.settings.get("pkgcache_conf", "")
        user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
        return Tier(listen_host=self.args.listen_host, listen_port=self.args.listen_port,
                    workers=[free_port() for _ in range(self.workers)], nginx_port=free_port(),
                    published=self.root / PRIVATE / "front", run_dir=run, allow_clients=self.args.allow_clients,
                    allow_ports=self.args.allow_ports(parse_conf(conf).allow_ports if conf else None), user=user,
                    nginx_workers=max(1, min(self.workers, os.cpu_count() or 1)),
                    maxconn=max(256, min(2000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 500) // 4)),
                    connect_timeout=self._seconds("pkgcache_connect_timeout", 15),
                    idle_timeout=self._seconds("pkgcache_idle_timeout", 30))

    def _seconds(self, name: str, default: int) -> int:
        """A worker timeout nginx applies too, to the misses it fetches (checked again by the workers)."""
        return parse_bounded(name, self.args.settings.get(name, str(default)), 1, 86400, "seconds")

    def build(self, t: Tier) -> None:
        (t.run_dir / "haproxy.cfg").write_text(haproxy_cfg(t))
        (t.run_dir / "nginx.conf").write_text(nginx_conf(t))
        t.make_dirs()
        for i, port in enumerate(t.workers):
            argv = [self.mitmdump, "-s", str(self.entry), "--listen-host", "127.0.0.1", "--listen-port", str(port),
                    "--set", f"pkgcache_dir={self.root}", "--set", "pkgcache_trusted_front=127.0.0.1,::1",
                    "--set", f"pkgcache_front_fetch={t.run_dir}",
                    *self._quiet(), *self.args.worker_args]
            self.children.append(Child(f"worker {i}", argv, port))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.children.append(Child("nginx", [nginx, "-p", str(t.run_dir), "-e", "stderr", "-c",
                                             str(t.run_dir / "nginx.conf")], t.nginx_port,
                                   leftovers=[t.nginx_socket] if t.nginx_socket else []))
        self.children.append(Child("haproxy", [haproxy, "-db", "-f", str(t.run_dir / "haproxy.cfg")],
                                   t.listen_port))

    def _quiet(self) -> list[str]:
        """Workers log warnings and errors only, and no flow lines: the front's health checks would fill the
        journal (say otherwise with --set termlog_verbosity=info / flow_detail=1)."""
        out = []
        for name, value in (("termlog_verbosity", "warn"), ("flow_detail", "0")):
            if name not in self.args.settings:
                out += ["--set", f"{name}={value}"]
        return out

    def run(self) -> int:
        try:
            t = self.tier()
        except (StoreError, ValueError) as e:
            print(f"pkgcache serve: {e}", file=sys.stderr)
            return 2
        for tool in ("nginx", "haproxy"):
            if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
                print(f"pkgcache serve: --workers needs {tool} (apt-get install {tool})", file=sys.stderr)
                return 2
        self.build(t)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        front_host = "127.0.0.1" if t.listen_host in ("", "*", "0.0.0.0", "::") else t.listen_host
        workers, engines = self.children[:-2], self.children[-2:]
        for group in (workers, engines[:1], engines[1:]):  # the workers first, the front last: nothing waits
            for child in group:
                child.start()
            for child in group:
                host = front_host if child.name == "haproxy" else "127.0.0.1"
                if child.proc is not None and not wait_listening(child.port, child.proc, host=host):
                    print(f"pkgcache serve: {child.name} did not start (see its lines above)", file=sys.stderr)
                    self.stop()
                    return 2
        shown = "PROXY-HOST" if t.listen_host in ("", "*", "0.0.0.0", "::") else t.listen_host
        log.info("pkgcache: ready: %d workers behind HAProxy and nginx; clients use http://%s:%d as their proxy; "
                 "dashboard at http://%s:%d/", self.workers, shown, t.listen_port, shown, t.listen_port)
        if self.republishing:
            threading.Thread(target=self._republish, name="pkgcache: republish", daemon=True).start()
        stats = Stats(self.root / PRIVATE)
        store = CacheStore(self.root)
        front = FrontLog(t.front_log, stats, self._reopen_logs, store.note_used)
        swept = 0.0
        try:
            while not self.stopping:
                time.sleep(POLL)
                front.read()
                self._keep_alive()
                if time.monotonic() - swept > SWEEP_EVERY:
                    swept = time.monotonic()
                    sweep_landing(t.landing)
                    sweep_grants(t.run_dir)  # a killed worker's grants: its tokens fetch nothing more
                    rotate_if_large(t.fetch_log, self._reopen_logs)
        finally:
            self.stop()
            front.read()
            stats.close()
            store.close()
        return 1 if self.failed else 0

    def _keep_alive(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None and not self.stopping:
                now = time.monotonic()
                child.deaths = [t for t in child.deaths if now - t < CRASH_WINDOW] + [now]
                if len(child.deaths) > CRASH_LIMIT:
                    log.error("pkgcache: %s exited %d times within %d s; stopping the tier", child.name,
                              len(child.deaths), CRASH_WINDOW)
                    self.failed = True
                    self.stopping = True
                    return
                log.error("pkgcache: %s (port %d) exited with status %s; starting it again", child.name, child.port,
                          child.proc.returncode)
                child.restarts += 1
                child.start()

    def _reopen_logs(self) -> None:
        self._signal("nginx", signal.SIGUSR1)

    def _signal(self, name: str, sig: int) -> None:
        for child in self.children:
            if child.name == name and child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(sig)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):  # the front first: no new requests reach a stopping worker
            child.stop()


def run_tier(root: Path, workers: int, extra: list[str], mitmdump: str, entry: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        args = split_args(extra)
    except TierArgsError as e:
        print(f"pkgcache serve: {e}", file=sys.stderr)
        return 2
    return Supervisor(root, workers, args, mitmdump, entry).run()
