#!/usr/bin/env python3
"""A/B the embedded default by hand: an earlier commit's proxy and this tree's, measured in turns.

Both run at once (stock ``mitmdump -s addons/pkgcache.py``, the earlier one from
``git archive REF``), on the same origin, and take turns on each measure, in
alternating order, so a busy moment of this shared machine falls on both
alike: 100 KB hits over 16 keep-alive connections (wrk), and a large miss and
hit for one client (curl).  Prints each round and the medians; asserts nothing.

Usage: python3 bench/ab_embedded.py [--ref COMMIT] [--rounds 4] [--size-mib 256]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_core import NginxOrigin, curl_get, free_port, rps_wrk  # noqa: E402
from support.origin import Origin, make_file  # noqa: E402
from support.proxy import ENTRY, Proxy  # noqa: E402

BIG = "/debian/pool/main/b/big/big_{}_all.deb"
SMALL = "/debian/pool/main/s/small/small_{}_all.deb"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="HEAD~1", help="the earlier commit (default: HEAD~1)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--size-mib", type=int, default=256)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pkgcache-ab-"))
    try:
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref, "addons", "conf"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        (work / "origin").mkdir()
        origin = Origin(work / "origin", port=free_port()).start()
        fast = NginxOrigin(origin.root, work / "nginx-origin")
        size = args.size_mib << 20
        proxies = {"before": Proxy(work / "cache-old", entry=old / "addons" / "pkgcache.py"),
                   "now": Proxy(work / "cache-new", entry=ENTRY)}
        figures: dict[str, dict[str, list[float]]] = {n: {"100KB hits req/s": [], "miss MB/s": [], "hit MB/s": []}
                                                      for n in proxies}
        try:
            for name in proxies:
                small = origin.root / SMALL.format(name).lstrip("/")
                small.parent.mkdir(parents=True, exist_ok=True)
                small.write_bytes(b"x" * 100 * 1024)
                curl_get(proxies[name].url, origin.base + SMALL.format(name))
            for r in range(args.rounds):
                order = list(proxies) if r % 2 == 0 else list(reversed(proxies))
                for name in order:
                    p = proxies[name]
                    rps = rps_wrk(p.port, origin.base + SMALL.format(name), seconds=5)
                    big = BIG.format(f"{name}{r}")
                    make_file(origin.root / big.lstrip("/"), size, seed=r)
                    miss_s, n = curl_get(p.url, fast.url + big)
                    hit_s, n2 = curl_get(p.url, fast.url + big)
                    assert n == n2 == size, (n, n2)
                    f = figures[name]
                    f["100KB hits req/s"].append(rps or 0.0)
                    f["miss MB/s"].append(size / miss_s / 1e6)
                    f["hit MB/s"].append(size / hit_s / 1e6)
                    print(f"round {r + 1} {name:>6}: {rps or 0:8.0f} req/s, miss {size / miss_s / 1e6:6.0f} MB/s, "
                          f"hit {size / hit_s / 1e6:6.0f} MB/s", flush=True)
        finally:
            for p in proxies.values():
                p.stop()
            fast.stop()
            origin.stop()
        print(f"\nmedians ({args.ref} vs this tree)")
        for measure in figures["now"]:
            b, n = statistics.median(figures["before"][measure]), statistics.median(figures["now"][measure])
            print(f"  {measure:<20} before {b:10.1f}   now {n:10.1f}   now/before {n / b:5.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
