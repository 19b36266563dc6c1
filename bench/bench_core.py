#!/usr/bin/env python3
"""Benchmark the core cache by hand: prints figures, asserts nothing.

Starts a local origin (nginx serving the large files, as a real mirror would: a
Python origin would be the slowest part of every miss; the test suite's origin
for the rest), a stock ``mitmdump -s addons/pkgcache.py`` (the
embedded default), the production tier ``pkgcache serve --workers 2`` (HAProxy
and nginx in front of two workers) and apt-cacher-ng, where installed, all at
once, and measures each on the same files:

* 1 GiB miss and hit throughput for one client (curl; the setups take turns, --repeat rounds, median kept);
* requests/s for 100 KB hits over 16 keep-alive connections (wrk, else httpx);
* upstream requests for 16 concurrent cold clients of one 64 MiB file, and their wall time;
* peak RSS of the proxy (all processes of the tier) while 4 clients read a 1 GiB hit.

Then the ratios of each pkgcache setup to apt-cacher-ng, measured in the same run.

Everything talks to 127.0.0.1 only.  Usage: python3 bench/bench_core.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.proxy import Proxy  # noqa: E402
from support.origin import Behaviour, Origin, make_file  # noqa: E402
from support.tier import TierProcess  # noqa: E402

BIG = "/debian/pool/main/b/big/big_1.0_all.deb"
SMALL = "/debian/pool/main/s/small/small_{}_all.deb"


def curl_get(proxy: str, url: str) -> tuple[float, int]:
    t = time.perf_counter()
    r = subprocess.run(["curl", "-sS", "-x", proxy, "-o", "/dev/null", "-w", "%{size_download}", url],
                       capture_output=True, text=True, check=True)
    return time.perf_counter() - t, int(r.stdout)


def rate(nbytes: int, secs: float) -> str:
    return f"{nbytes / secs / 1e6:8.1f} MB/s"


def rps_wrk(proxy_port: int, url: str, seconds: int = 10) -> float | None:
    if not shutil.which("wrk"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.path = "{url}"\n')  # absolute-form request line: a proxy request
        script = f.name
    r = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{proxy_port}/"],
                       capture_output=True, text=True)
    os.unlink(script)
    for line in r.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    print(r.stdout, r.stderr)
    return None


def rps_httpx(proxy: str, url: str, seconds: int = 10) -> float:
    import httpx

    count = 0
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def worker() -> None:
        nonlocal count
        with httpx.Client(proxy=proxy, trust_env=False) as c:
            while time.monotonic() < stop:
                c.get(url)
                with lock:
                    count += 1

    threads = [threading.Thread(target=worker) for _ in range(16)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return count / (time.perf_counter() - t)


def cold_clients(proxy: str, origin: Origin, path: str, n: int = 16) -> tuple[int, float]:
    """Upstream requests and wall time for n clients starting together on one uncached file."""
    origin.log.clear()
    threads = [threading.Thread(target=curl_get, args=(proxy, origin.base + path)) for _ in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return origin.count(path), time.perf_counter() - t


def tree(pid: int) -> list[int]:
    """pid and all its descendants (a tier is a supervisor, HAProxy, nginx and its workers, the workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(c) for c in children]
    return out


def rss_kb(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def peak_rss_4_readers(pid: int, proxy: str, url: str) -> float:
    threads = [threading.Thread(target=curl_get, args=(proxy, url)) for _ in range(4)]
    peak = 0
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        peak = max(peak, rss_kb(tree(pid)))
        time.sleep(0.05)
    return peak / 1024


def free_port() -> int:
    """A free port below 32768: apt-cacher-ng 3.7 neither binds nor connects to ports above it here."""
    for port in range(13142, 14142):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class LocalServer:
    """A server the bench starts on a loopback port: waited for until it accepts, stopped at the end."""

    port: int
    proc: subprocess.Popen[bytes]

    def _start(self, argv: list[str], what: str) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{what} did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class AptCacherNg(LocalServer):
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        for d in ("cache", "log", "conf"):
            (work / d).mkdir(parents=True, exist_ok=True)
        conf = work / "conf" / "acng.conf"
        conf.write_text(
            f"CacheDir: {work}/cache\nLogDir: {work}/log\nPort: {self.port}\nBindAddress: 127.0.0.1\n"
            "ForeGround: 1\nAllowUserPorts: 0\n"
        )
        self._start(["apt-cacher-ng", "-c", str(work / "conf"), "ForeGround=1"], "apt-cacher-ng")


@dataclass
class Setup:
    """One proxy under test, running for the whole bench, so large transfers can be measured in turns."""

    key: str
    name: str
    url: str
    port: int
    pid: int | None
    stop: Callable[[], None]


class NginxOrigin(LocalServer):
    """nginx serving the origin's folder on its own port: large misses measure the proxies, not the origin."""

    def __init__(self, root: Path, work: Path) -> None:
        self.port = free_port()
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""  # the bench's folders are private to its user
        conf.write_text(f"{user}daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;\n"
                        "events { worker_connections 1024; }\n"
                        f"http {{ access_log off; sendfile on; sendfile_max_chunk 0; server {{ "
                        f"listen 127.0.0.1:{self.port}; root {root}; }} }}\n")
        self._start(["nginx", "-p", str(work), "-e", "stderr", "-c", str(conf)], "the nginx origin")


def large_transfers(setups: list[Setup], origin: Origin, size: int, repeat: int,
                    base: str | None = None) -> dict[str, dict[str, float]]:
    """The 1 GiB miss (a new copy each time) and hit, measured in turns across the setups, repeat rounds, each
    round in another order; the median per setup.  Single runs on a shared machine move by 10 to 30%, and
    whatever runs first or last (disk write-back of the earlier misses) would otherwise favour one setup."""
    for st in setups:
        for i in range(repeat):
            shutil.copy(origin.root / BIG.lstrip("/"), origin.root / BIG.replace("big_1.0", f"big_{st.key}{i}").lstrip("/"))
    os.sync()
    misses: dict[str, list[float]] = {st.key: [] for st in setups}
    hits: dict[str, list[float]] = {st.key: [] for st in setups}
    for kind, out in (("miss", misses), ("hit", hits)):
        for i in range(repeat):
            for st in setups[i % len(setups):] + setups[:i % len(setups)]:
                big = BIG.replace("big_1.0", f"big_{st.key}{i if kind == 'miss' else 0}")
                secs, n = curl_get(st.url, (base or origin.base) + big)
                if n != size:
                    raise RuntimeError(f"{st.name}: got {n} of {size} bytes for {big}")
                out[st.key].append(n / secs / 1e6)
            os.sync()
    res = {}
    for st in setups:
        print(f"{st.name}: misses {', '.join(f'{m:.0f}' for m in misses[st.key])} MB/s; "
              f"hits {', '.join(f'{h:.0f}' for h in hits[st.key])} MB/s")
        res[st.key] = {"miss MB/s": statistics.median(misses[st.key]), "hit MB/s": statistics.median(hits[st.key])}
    return res


def run_suite(st: Setup, origin: Origin, res: dict[str, float], big_base: str) -> dict[str, float]:
    """The rest, one setup at a time: small hits, cold clients, memory."""
    small = SMALL.format(st.key)
    shutil.copy(origin.root / SMALL.format("x").lstrip("/"), origin.root / small.lstrip("/"))
    curl_get(st.url, origin.base + small)
    r = rps_wrk(st.port, origin.base + small)
    res["100KB hits req/s"] = r if r is not None else rps_httpx(st.url, origin.base + small)
    cold = f"/debian/pool/main/c/cold/cold_{st.key}_all.deb"
    make_file(origin.root / cold.lstrip("/"), 64 * 1024 * 1024, seed=3)
    os.sync()
    origin.behaviours[cold] = Behaviour(chunk_delay=0.002)
    res["upstream requests, 16 cold clients"], res["wall s, 16 cold clients"] = cold_clients(st.url, origin, cold)
    if st.pid:
        big = BIG.replace("big_1.0", f"big_{st.key}0")
        res["peak RSS MB, 4 x 1 GiB hit readers"] = peak_rss_4_readers(st.pid, st.url, big_base + big)
    print(f"\n== {st.name}")
    for k, v in res.items():
        print(f"  {k:<38} {v:10.1f}")
    return res


def report(results: dict[str, dict[str, float]]) -> None:
    """One table, side by side, with each pkgcache setup's ratio to apt-cacher-ng."""
    names = [n for n in ("embedded", "tier", "acng") if results.get(n)]
    rows = list(dict.fromkeys(k for n in names for k in results[n]))
    ratios = [n for n in ("embedded", "tier") if n in names and "acng" in names]
    head = f"{'measure':<38}" + "".join(f"{n:>12}" for n in names) + "".join(f"{n + '/acng':>15}" for n in ratios)
    print("\n" + head + "\n" + "-" * len(head))
    for k in rows:
        line = f"{k:<38}" + "".join(f"{results[n].get(k, float('nan')):12.1f}" for n in names)
        for n in ratios:
            theirs = results["acng"].get(k)
            line += f"{results[n][k] / theirs:15.2f}" if theirs and k in results[n] else f"{'':>15}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--no-acng", action="store_true", help="skip apt-cacher-ng even if installed")
    ap.add_argument("--no-tier", action="store_true", help="skip pkgcache serve --workers")
    ap.add_argument("--workers", type=int, default=2, help="workers of the tier (default: 2)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="large misses and hits measured this many times each; the median is reported (default: 3)")
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="pkgcache-bench-"))
    try:
        (work / "origin").mkdir()
        origin = Origin(work / "origin", port=free_port()).start()  # low port: see free_port()
        print(f"making a {args.size_mib} MiB file ...")
        make_file(origin.root / BIG.lstrip("/"), size)
        (origin.root / SMALL.format("x").lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (origin.root / SMALL.format("x").lstrip("/")).write_bytes(os.urandom(100 * 1024))
        os.sync()  # let the kernel write the test file back now, not during the miss measurement
        setups: list[Setup] = []
        try:
            proxy = Proxy(work / "cache")
            setups.append(Setup("embedded", "pkgcache, embedded (stock mitmdump)", proxy.url, proxy.port,
                                proxy.proc.pid, proxy.stop))
            if not args.no_tier:
                tier = TierProcess(work / "tier-cache", args.workers)
                setups.append(Setup("tier", f"pkgcache serve --workers {args.workers}", tier.url, tier.port,
                                    tier.proc.pid, tier.stop))
            if shutil.which("apt-cacher-ng") and not args.no_acng:
                acng = AptCacherNg(work / "acng")
                setups.append(Setup("acng", "apt-cacher-ng", acng.url, acng.port, acng.proc.pid, acng.stop))
            fast = NginxOrigin(origin.root, work / "nginx-origin") if shutil.which("nginx") else None
            try:
                print(f"large files from {'an nginx' if fast else 'a Python'} origin")
                results = large_transfers(setups, origin, size, args.repeat, fast.url if fast else None)
                for st in setups:
                    run_suite(st, origin, results[st.key], fast.url if fast else origin.base)
            finally:
                if fast is not None:
                    fast.stop()
        finally:
            for st in setups:
                st.stop()
        report(results)
        origin.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
