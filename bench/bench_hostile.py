#!/usr/bin/env python3
"""Measure by hand what hostile input and faulty upstreams cost the proxy: prints figures, asserts nothing.

* peak RSS while 4 clients ask for an uncached 120 MB file with a Range header of
  thousands of digits (this used to leave the body unstreamed, held in memory);
* peak RSS while 4 clients read one 120 MB miss whose partial file cannot be
  written (followers are relayed from the leader's stream, within a bound);
* how long a client waits on an upstream that stalls after its headers, with
  pkgcache_idle_timeout=5.

Everything talks to 127.0.0.1 only.  Usage: python3 bench/bench_hostile.py [--size-mib 120]
"""

from __future__ import annotations

import argparse
import resource
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.proxy import Proxy  # noqa: E402
from support.origin import Behaviour, Origin, make_file  # noqa: E402

BIG = "/debian/pool/main/b/big/big_1.0_all.deb"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raw_get(port: int, url: str, extra: str) -> int:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        n = 0
        while piece := s.recv(1 << 20):
            n += len(piece)
        return n


def _peak_during(proxy: Proxy, threads: list[threading.Thread]) -> int:
    peak = 0
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _rss_kb(proxy.proc.pid))
        time.sleep(0.05)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=120)
    size = ap.parse_args().size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "origin").mkdir()
        origin = Origin(work / "origin").start()
        make_file(origin.root / BIG.lstrip("/"), size)
        url = origin.base + BIG

        proxy = Proxy(work / "cache")
        base = _rss_kb(proxy.proc.pid)
        threads = [threading.Thread(target=_raw_get, args=(proxy.port, url, f"Range: bytes={'9' * 5000}-\r\n"))
                   for _ in range(4)]
        peak = _peak_during(proxy, threads)
        print(f"4 x Range with 5000 digits, {size >> 20} MiB miss: RSS {base / 1024:.0f} MB before, "
              f"peak {peak / 1024:.0f} MB")
        proxy.stop()

        def small_files() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

        proxy = Proxy(work / "cache2", preexec_fn=small_files)
        base = _rss_kb(proxy.proc.pid)
        threads = [threading.Thread(target=_raw_get, args=(proxy.port, url, "")) for _ in range(4)]
        peak = _peak_during(proxy, threads)
        print(f"4 clients of one {size >> 20} MiB miss, partial file unwritable: RSS {base / 1024:.0f} MB before, "
              f"peak {peak / 1024:.0f} MB")
        proxy.stop()

        origin.behaviours[BIG] = Behaviour(stall_after=1 << 20, stall=60)
        proxy = Proxy(work / "cache3", "--set", "pkgcache_idle_timeout=5")
        t = time.perf_counter()
        _raw_get(proxy.port, url, "")
        print(f"upstream stalls after 1 MiB, pkgcache_idle_timeout=5: client released after "
              f"{time.perf_counter() - t:.1f} s")
        proxy.stop()
        origin.stop()


if __name__ == "__main__":
    main()
