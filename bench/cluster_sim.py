"""How many cached URLs change node when pkgcache nodes come and go behind a URL-hashing balancer.

Each URL that moves is a hit lost once: its new node fetches it from upstream
the next time it is asked for.  Consistent hashing (HAProxy's `hash-type
consistent`, a ring with many points per server) is compared with plain
modulo hashing (`hash-type map-based`).  Run by hand:

    python3 bench/cluster_sim.py [URLS]
"""

from __future__ import annotations

import bisect
import hashlib
import sys

POINTS = 160  # points per server on the ring (HAProxy places a comparable number per unit of weight)


def h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class Ring:
    def __init__(self, nodes: list[str]) -> None:
        self.points = sorted((h(f"{n}#{i}"), n) for n in nodes for i in range(POINTS))
        self.keys = [p for p, _ in self.points]

    def node(self, url: str) -> str:
        i = bisect.bisect(self.keys, h(url)) % len(self.points)
        return self.points[i][1]


def modulo(nodes: list[str], url: str) -> str:
    return nodes[h(url) % len(nodes)]


def moved(before: dict[str, str], after: dict[str, str]) -> float:
    return sum(before[u] != after[u] for u in before) / len(before)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    urls = [f"http://mirror.example/debian/pool/main/p/pkg{i}/pkg{i}_1.0_amd64.deb" for i in range(count)]
    print(f"{count} cached URLs; share of them that miss once after the change (ideal: 1/N or 1/(N+1))")
    print(f"{'nodes':>5} | {'one leaves: ring':>16} | {'modulo':>6} | {'one joins: ring':>15} | {'modulo':>6} | "
          f"{'busiest node / mean':>19}")
    for n in (2, 3, 4, 8, 16):
        nodes = [f"node{i}" for i in range(n)]
        ring = Ring(nodes)
        base = {u: ring.node(u) for u in urls}
        base_mod = {u: modulo(nodes, u) for u in urls}
        fewer, more = nodes[:-1], [*nodes, f"node{n}"]
        leave = moved(base, {u: Ring(fewer).node(u) for u in urls})
        leave_mod = moved(base_mod, {u: modulo(fewer, u) for u in urls})
        join = moved(base, {u: Ring(more).node(u) for u in urls})
        join_mod = moved(base_mod, {u: modulo(more, u) for u in urls})
        load = max(list(base.values()).count(x) for x in nodes) / (count / n)
        print(f"{n:>5} | {leave:>15.1%} | {leave_mod:>6.1%} | {join:>14.1%} | {join_mod:>6.1%} | {load:>19.2f}")


if __name__ == "__main__":
    main()
