"""Several pkgcache nodes (separate cache roots, loopback ports) behind HAProxy, configured as
recipes/cluster.md says: one upstream fetch per file for the cluster, a stopped node's URLs move with no
failed request, an added node takes only its share."""

from __future__ import annotations

import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from support.origin import Origin
from support.proxy import wait_for
from support.recipes import block
from support.tier import free_port

FILES = [f"/debian/pool/main/n/n{i}/n{i}_1_all.deb" for i in range(60)]


class Balancer:
    def __init__(self, tmp: Path, nodes: dict[str, int]) -> None:
        self.port, self.tmp, self.proc = free_port(), tmp, None
        self.configure(nodes)

    def configure(self, nodes: dict[str, int]) -> None:
        """The recipe's configuration as written, with this test's addresses for the listener and the nodes."""
        text = block("cluster.md", 0).replace("bind *:8080", f"bind 127.0.0.1:{self.port}")
        text = re.sub(r"    server node\d .*\n", "", text)
        servers = "".join(f"    server {name} 127.0.0.1:{port} check inter 1s fall 1 rise 1\n"
                          for name, port in nodes.items())
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(text.rstrip("\n") + "\n" + servers)
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: self._up(), timeout=20, what="haproxy to listen")

    def _up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def get(self, url: str) -> httpx.Response:
        with httpx.Client(proxy=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=30) as c:
            return c.get(url)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def _fetch_all(lb: Balancer, origin: Origin) -> dict[str, httpx.Response]:
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(FILES, pool.map(lambda p: lb.get(origin.base + p), FILES)))


def test_a_cluster_fetches_once_survives_a_node_and_grows_by_a_share(origin: Origin, start_proxy,
                                                                     tmp_path: Path) -> None:
    for path in FILES:
        origin.put(path, path.encode() * 50)
    nodes = {f"node{i}": start_proxy("--set", "pkgcache_trusted_front=127.0.0.1", cache_dir=tmp_path / f"c{i}")
             for i in (1, 2, 3)}
    ports = {name: p.port for name, p in nodes.items()}
    lb = Balancer(tmp_path, ports)
    try:
        first = _fetch_all(lb, origin)
        assert all(r.status_code == 200 and r.content == p.encode() * 50 for p, r in first.items())
        placed = {p: r.headers["x-pkgcache-node"] for p, r in first.items()}
        assert len(set(placed.values())) == 3  # every node holds a share
        assert all(origin.count(p) == 1 for p in FILES)  # one upstream fetch per file for the whole cluster
        again = _fetch_all(lb, origin)
        assert all(r.headers["x-cache"] == "HIT" and r.headers["x-pkgcache-node"] == placed[p]
                   for p, r in again.items())

        # a node stops: its URLs move to the others, no request fails, the rest stay put
        nodes["node2"].stop()
        moved = _fetch_all(lb, origin)
        assert all(r.status_code == 200 and r.content == p.encode() * 50 for p, r in moved.items())
        for p, r in moved.items():
            if placed[p] == "node2":
                assert r.headers["x-pkgcache-node"] != "node2" and origin.count(p) == 2
            else:
                assert r.headers["x-pkgcache-node"] == placed[p] and r.headers["x-cache"] == "HIT"

        # a node is added (node2 back, node4 new): only the URLs that now hash to node4 move
        nodes["node2"] = start_proxy("--set", "pkgcache_trusted_front=127.0.0.1", cache_dir=tmp_path / "c2")
        node4 = start_proxy("--set", "pkgcache_trusted_front=127.0.0.1", cache_dir=tmp_path / "c4")
        lb.configure({**ports, "node2": nodes["node2"].port, "node4": node4.port})
        grown = _fetch_all(lb, origin)
        went = [p for p, r in grown.items() if r.headers["x-pkgcache-node"] != placed[p]]
        assert all(grown[p].headers["x-pkgcache-node"] == "node4" for p in went)
        assert 0 < len(went) < len(FILES) / 2
        assert all(grown[p].headers["x-cache"] == "HIT" for p in FILES if p not in went)  # node2's cache kept
        # a browser at the balancer's own address gets a node's dashboard, not a loop
        page = httpx.get(f"http://127.0.0.1:{lb.port}/", trust_env=False, timeout=10)
        assert page.status_code == 200 and "Hit ratio (requests)" in page.text
    finally:
        lb.stop()
