#!/usr/bin/env python3
"""Benchmark what a cache's size costs, by hand: prints figures, asserts nothing.

Fills a cache to N files (default N = 10^3, 10^4, 10^5, 10^6; a fill is kept under --work and reused) the
way pkgcache leaves one: small bodies in the host/path tree, their index entries, their last-use times and,
for the tier, their links in the published tree.  Then, for each N, for the embedded proxy (stock
``mitmdump -s addons/pkgcache.py``) and the tier (``pkgcache serve --workers 1``), and apt-cacher-ng on a cache
of the same files where installed:

* ready: seconds from start until the proxy answers a hit;
* quiet: seconds from start until the proxy's CPU use stays under 5% for two seconds, and the CPU seconds it
  used in its first 20 s after it was ready;
* hit latency (p50/p99, ms) of small hits from one client during those first seconds, and once quiet;
* /metrics, /stats.json and the dashboard page, ms each once quiet; `pkgcache ls --limit 20`, s;
* `pkgcache verify` and `pkgcache expire --dry-run`, s, and the p99 of hits while verify runs;
* with --index, the time the proxy takes to take in a refreshed Debian Packages index of --index packages
  (a real suite's main has about 60,000) and the p99 of other clients' hits meanwhile.

Everything talks to 127.0.0.1 only.  Usage: python3 bench/bench_scale.py [--sizes 1000,10000] [--index 60000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "addons"))

from pkgcache_suite.storage.entry import Entry  # noqa: E402
from pkgcache_suite.storage import CacheStore  # noqa: E402
from pkgcache_suite.storage import totals  # noqa: E402
from pkgcache_suite.storage.private import PRIVATE  # noqa: E402
from support.origin import Origin  # noqa: E402
from support.proxy import Proxy  # noqa: E402
from support.tier import TierProcess  # noqa: E402

HOST = "mirror.example"  # the fill's files are hits: nothing is ever asked of this name
PER_DIR = 1000
BODY = b"x" * 200
TICK = os.sysconf("SC_CLK_TCK")
MAINTENANCE_MAX = 100_000


def key_of(i: int) -> str:
    return f"{HOST}/debian/pool/main/s/scale{i // PER_DIR:04d}/pkg{i:07d}_1.0_all.deb"


def fill(root: Path, n: int) -> None:
    """A cache of n committed files, written straight in pkgcache's layout (fast: no proxy involved)."""
    import diskcache

    done = root / PRIVATE / f"filled-{n}"
    if done.exists():
        index = diskcache.Cache(str(root / PRIVATE / "index"), eviction_policy="none", size_limit=2**62)
        if not totals.read(index).complete:  # filled before the index kept its totals
            totals.count_untagged(index, batch=10_000)
        index.close()
        return
    shutil.rmtree(root, ignore_errors=True)
    (root / PRIVATE / "front").mkdir(parents=True)
    sha = hashlib.sha256(BODY).hexdigest()
    index = diskcache.Cache(str(root / PRIVATE / "index"), eviction_policy="none", size_limit=2**62)
    used = diskcache.Cache(str(root / PRIVATE / "used"), eviction_policy="none", size_limit=2**62)
    now = time.time()
    t0 = time.monotonic()
    for start in range(0, n, 10_000):
        with index.transact(), used.transact():
            for i in range(start, min(n, start + 10_000)):
                key = key_of(i)
                path = root / key
                if i % PER_DIR == 0:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    (root / PRIVATE / "front" / key).parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(BODY)
                os.link(path, root / PRIVATE / "front" / key)
                index.set(key, asdict(Entry(key=key, url=f"http://{key}", kind="immutable", length=len(BODY),
                                            sha256=sha, fetched=now, validated=now)), tag=totals.COUNTED)
                used.set(key, now - i)
        if start and start % 100_000 == 0:
            print(f"  filled {start:,} of {n:,} ({time.monotonic() - t0:.0f} s)", flush=True)
    index.set(totals.KEY, {"files": n, "bytes": n * len(BODY), "complete": True})
    index.close()
    used.close()
    (root / PRIVATE / "running").mkdir()  # as a cleanly stopped pkgcache leaves it: nothing to check at start
    done.touch()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def tree(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(os.getpgid(pid))], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out] or [pid]


def latencies(client: httpx.Client, n: int, count: int, stop: threading.Event | None = None) -> list[float]:
    out = []
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        url = f"http://{key_of(random.randrange(n))}"
        t = time.perf_counter()
        r = client.get(url)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {r.status_code}")
    return out


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def until_quiet(pids, started: float, limit: float = 120.0) -> float:
    """Seconds from start until the processes used under 5% CPU over 2 s."""
    window: list[tuple[float, float]] = []
    while time.monotonic() - started < limit:
        window.append((time.monotonic(), cpu_seconds(pids())))
        window = [w for w in window if window[-1][0] - w[0] <= 2.0]
        if window[-1][0] - window[0][0] >= 1.9 and (window[-1][1] - window[0][1]) / 2.0 < 0.05:
            return window[0][0] - started
        time.sleep(0.1)
    return float("inf")


def _wait_ready(c: httpx.Client, t0: float) -> float:
    while True:
        try:
            if c.get(f"http://{key_of(0)}").status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def startup(start, pids_of, n: int, label_cpu: str = "CPU s after ready") -> dict[str, float]:
    """Two starts: one left alone (ready, quiet, the CPU it spends after it is ready), one under a client's
    hits from the moment it is ready (their latency while start-up work runs)."""
    res: dict[str, float] = {}
    t0 = time.monotonic()
    proc = start()
    with httpx.Client(proxy=proc.url, trust_env=False, timeout=60) as c:
        res["ready s"] = _wait_ready(c, t0)
        cpu0 = cpu_seconds(pids_of(proc))
        res["quiet s"] = until_quiet(lambda: pids_of(proc), t0)
        res[label_cpu] = cpu_seconds(pids_of(proc)) - cpu0
    proc.stop()
    proc = start()
    with httpx.Client(proxy=proc.url, trust_env=False, timeout=60) as c:
        _wait_ready(c, time.monotonic())
        early: list[float] = []
        end = time.monotonic() + 10
        while time.monotonic() < end:
            early += latencies(c, n, 20)
        res["hit p50 ms, first 10 s"] = pct(early, 0.5)
        res["hit p99 ms, first 10 s"] = pct(early, 0.99)
    return res | {"_proc": proc}  # type: ignore[dict-item]


def measure(name: str, start, n: int, root: Path, index: int) -> dict[str, float]:
    pids_of = (lambda p: tree(p.proc.pid)) if name == "tier" else (lambda p: [p.proc.pid])
    res = startup(start, pids_of, n)
    proc = res.pop("_proc")  # type: ignore[assignment]
    with httpx.Client(proxy=proc.url, trust_env=False, timeout=60) as c:
        until_quiet(lambda: pids_of(proc), time.monotonic())
        calm = latencies(c, n, 1000)
        res["hit p50 ms, quiet"] = pct(calm, 0.5)
        res["hit p99 ms, quiet"] = pct(calm, 0.99)
        for label, path in (("/metrics ms", "/metrics"), ("/stats.json ms", "/stats.json"), ("dashboard ms", "/")):
            t = time.perf_counter()
            c.get(f"http://pkgcache{path}")
            res[label] = (time.perf_counter() - t) * 1000
        if name == "embedded":
            res.update(commands(c, n, root))
            if index:
                res.update(index_refresh(c, proc, n, index))
    proc.stop()
    return res


def commands(c: httpx.Client, n: int, root: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    exe = str(Path(sys.executable).with_name("pkgcache"))
    t = time.perf_counter()
    subprocess.run([exe, "--cache-dir", str(root), "ls", "--limit", "20"], capture_output=True, check=True)
    out["ls --limit 20 s"] = time.perf_counter() - t
    if n > MAINTENANCE_MAX:
        return out  # expire and verify read every file: linear, measured on the smaller caches
    t = time.perf_counter()
    subprocess.run([exe, "--cache-dir", str(root), "expire", "--dry-run"], capture_output=True)
    out["expire --dry-run s"] = time.perf_counter() - t
    stop = threading.Event()
    during: list[float] = []
    th = threading.Thread(target=lambda: during.extend(latencies(c, n, 10**9, stop)))
    th.start()
    t = time.perf_counter()
    subprocess.run([exe, "--cache-dir", str(root), "verify"], capture_output=True)
    out["verify s"] = time.perf_counter() - t
    stop.set()
    th.join()
    out["hit p99 ms, during verify"] = pct(during, 0.99)
    return out


def index_refresh(c: httpx.Client, proc: Proxy, n: int, packages: int) -> dict[str, float]:
    """A Packages index of `packages` entries, fetched through the proxy from a loopback origin, while one
    client keeps asking for small hits."""
    work = proc.cache_dir.parent / "index-origin"
    shutil.rmtree(work, ignore_errors=True)
    path = packages_index(work, packages)
    origin = Origin(work).start()
    stop = threading.Event()
    during: list[float] = []
    th = threading.Thread(target=lambda: during.extend(latencies(
        httpx.Client(proxy=proc.url, trust_env=False, timeout=60), n, 10**9, stop)))
    th.start()
    t = time.perf_counter()
    c.get(f"{origin.base}/{path}").raise_for_status()
    fetched = time.perf_counter() - t
    store = CacheStore(proc.cache_dir)
    probe = "127.0.0.1_%d/debian/pool/main/b/bench%d/bench%d_1.%d-1_amd64.deb" % (origin.port, packages - 1,
                                                                                 packages - 1, packages - 1)
    while store.expected(probe) is None and time.perf_counter() - t < 300:
        time.sleep(0.05)
    taken = time.perf_counter() - t
    store.close()
    stop.set()
    th.join()
    origin.stop()
    return {"index fetch s": fetched, "index recorded s": taken, "hit p50 ms, during index": pct(during, 0.5),
            "hit p99 ms, during index": pct(during, 0.99), "hits during index": len(during)}


def packages_index(root: Path, packages: int) -> str:
    """A Debian Packages.xz of `packages` stanzas shaped like a real suite's (about 1 KB each), under root."""
    import lzma

    rel = "debian/dists/stable/main/binary-amd64/Packages.xz"
    path = root / rel
    path.parent.mkdir(parents=True)
    desc = " A package of the benchmark's index.\n" + " .\n".join(f" line {j} of its long description\n"
                                                                  for j in range(8))
    with lzma.open(path, "wt") as f:
        for i in range(packages):
            f.write(f"Package: bench{i}\nVersion: 1.{i}-1\nInstalled-Size: {i % 900 + 10}\n"
                    f"Maintainer: Bench <bench@example.invalid>\nArchitecture: amd64\nDepends: libc6 (>= 2.36)\n"
                    f"Description: benchmark package {i}\n{desc}Section: misc\nPriority: optional\n"
                    f"Filename: pool/main/b/bench{i}/bench{i}_1.{i}-1_amd64.deb\nSize: {1000 + i}\n"
                    f"SHA256: {hashlib.sha256(str(i).encode()).hexdigest()}\n\n")
    return rel


def fill_acng(work: Path, n: int) -> None:
    """apt-cacher-ng's cache of the same n files: body plus its .head file, kept for later runs."""
    cache = work / "cache"
    done = work / f"filled-{n}"
    if done.exists():
        return
    shutil.rmtree(work, ignore_errors=True)
    cache.mkdir(parents=True)
    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT"
            "\r\nContent-Type: application/octet-stream\r\nX-Original-Source: http://x\r\n\r\n").encode()
    for i in range(n):
        path = cache / key_of(i)
        if i % PER_DIR == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(BODY)
        path.with_name(path.name + ".head").write_bytes(head)
    done.touch()


def acng(n: int, work: Path) -> dict[str, float]:
    """apt-cacher-ng on a cache of the same n files (its own layout: body plus .head), same measures where it
    has them."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_core import AptCacherNg

    fill_acng(work, n)
    res = startup(lambda: AptCacherNg(work), lambda p: [p.proc.pid], n)
    proc = res.pop("_proc")  # type: ignore[assignment]
    with httpx.Client(proxy=proc.url, trust_env=False, timeout=60) as c:
        calm = latencies(c, n, 1000)
        res["hit p50 ms, quiet"] = pct(calm, 0.5)
        res["hit p99 ms, quiet"] = pct(calm, 0.99)
    proc.stop()
    return res


def table(results: dict[int, dict[str, dict[str, float]]]) -> None:
    setups = ["embedded", "tier", "acng"]
    measures: list[str] = []
    for per in results.values():
        for r in per.values():
            measures += [m for m in r if m not in measures]
    sizes = sorted(results)
    print("\n| measure | setup | " + " | ".join(f"N = {n:,}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for m in measures:
        for s in setups:
            row = [results[n].get(s, {}).get(m) for n in sizes]
            if any(v is not None for v in row):
                cells = ["" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}") for v in row]
                print(f"| {m} | {s} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--work", default="/var/tmp/pkgcache-bench-scale", help="fills are kept here and reused")
    ap.add_argument("--setups", default="embedded,tier,acng")
    ap.add_argument("--index", type=int, default=60000, help="packages in the refreshed index (0: skip)")
    ap.add_argument("--fill-only", action="store_true", help="only prepare the caches (they are kept for later runs)")
    args = ap.parse_args()
    work = Path(args.work)
    setups = args.setups.split(",")
    results: dict[int, dict[str, dict[str, float]]] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        root = work / f"cache-{n}"
        print(f"N = {n:,}: filling {root} ...", flush=True)
        fill(root, n)
        if args.fill_only:
            if "acng" in setups:
                fill_acng(work / f"acng-{n}", n)
            continue
        results[n] = {}
        if "embedded" in setups:
            results[n]["embedded"] = measure("embedded", lambda: Proxy(root), n, root, args.index)
        if "tier" in setups:
            results[n]["tier"] = measure("tier", lambda: TierProcess(root, 1), n, root, 0)
        if "acng" in setups and shutil.which("apt-cacher-ng"):
            results[n]["acng"] = acng(n, work / f"acng-{n}")
        for s, r in results[n].items():
            print(f"  {s}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()), flush=True)
    table(results)


if __name__ == "__main__":
    main()
