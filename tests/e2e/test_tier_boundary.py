"""The tier's trust boundary, tried as a hostile mirror would: nginx acts on nothing an upstream says.

A mirror answers every request with the headers nginx acts on (an
``X-Accel-Redirect`` to the fetch location naming a loopback service on a
port the allow-list refuses, to the published tree, to another origin's
published file; ``X-Accel-Buffering``, ``X-Accel-Limit-Rate``,
``X-Accel-Expires``) and a forged ``X-Cache``.  Through the tier, on every
path a request can take, that service never sees a connection, no client
gets its bytes, and the only ``X-Cache`` is the cache's own.  nginx itself,
given redirects no worker granted, refuses and logs them.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pkgcache_suite.tier.config import Tier, nginx_conf
from pkgcache_suite.tier.protocol import FETCH_PREFIX, HIT_LOCATION, REFUSED
from pkgcache_suite.tier.grants import give, take_back
from pkgcache_suite.tier.supervisor import free_port
from support.origin import Behaviour, Origin
from support.proxy import wait_for
from support.tier import TierProcess

SECRET = b"SECRET-BYTES-OF-A-LOOPBACK-SERVICE"
DEB = "/debian/pool/main/o/other/other_1.0_all.deb"


class Service:
    """A loopback service the allow-list refuses: counts every connection and answers each with its secret."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                                 % (len(SECRET), SECRET))
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def service() -> Iterator[Service]:
    s = Service()
    yield s
    s.close()


def _redirects(service: Service, other: Origin) -> list[tuple[str, str]]:
    token = f"{os.getpid():08x}{secrets.token_hex(12)}"
    return [("fetch location", f"{FETCH_PREFIX}{token}/127.0.0.1:{service.port}/x"),
            ("fetch location, IPv6 form", f"{FETCH_PREFIX}{token}/[::ffff:127.0.0.1]:{service.port}/x"),
            ("published tree", HIT_LOCATION),
            ("another origin's published file", DEB),
            ("another origin's published file, by its folder", f"/127.0.0.1_{other.port}{DEB}")]


def _check(r: httpx.Response, what: str) -> None:
    assert SECRET not in r.content, what
    assert not [h for h in r.headers if h.lower().startswith("x-accel-")], (what, r.headers)
    assert len(r.headers.get_list("x-cache")) == 1, (what, r.headers)


def test_a_hostile_mirror_steers_neither_nginx_nor_haproxy(tmp_path: Path, service: Service) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "other").mkdir()
    mirror, other = Origin(tmp_path / "mirror").start(), Origin(tmp_path / "other").start()
    other.put(DEB, b"the other origin's package\n" * 1000)
    tier = TierProcess(tmp_path / "cache", 1, "--set",
                       f"pkgcache_allow_ports=80,443,{mirror.port},{other.port}")
    try:
        with tier.client() as c:
            assert c.get(f"http://127.0.0.1:{service.port}/").status_code == 403  # the allow-list refuses it
            assert c.get(other.base + DEB).status_code == 200  # now published by the tier
            wait_for(lambda: c.get(other.base + DEB).headers.get("x-cache") == "HIT", what="the published copy")
            n = 0
            for what, where in _redirects(service, other):
                mirror.extra_headers[:] = [("X-Accel-Redirect", where), ("X-Accel-Buffering", "no"),
                                           ("X-Accel-Limit-Rate", "1"), ("X-Accel-Expires", "86400"),
                                           ("X-Accel-Charset", "koi8-r"), ("X-Cache", "HIT")]
                for kind, path, headers in (
                        ("package miss, fetched by nginx", "/debian/pool/main/h/h{n}/h{n}_1.0_all.deb", {}),
                        ("package miss, fetched by the worker", "/debian/pool/main/r/r{n}/r{n}_1.0_all.deb",
                         {"Range": "bytes=0-"}),
                        ("index", "/debian/dists/s{n}/InRelease", {}),
                        ("index again (revalidated)", "/debian/dists/s{n}/InRelease",
                         {"Cache-Control": "no-cache"}),
                        ("passed through", "/page{n}.html?q=1", {}),
                        ("missing upstream", "/debian/pool/main/m/m{n}/m{n}_1.0_all.deb", {}),
                        ("upstream error", "/debian/pool/main/e/e{n}/e{n}_1.0_all.deb", {}),
                        ("HEAD", "/debian/pool/main/d/d{n}/d{n}_1.0_all.deb", {})):
                    n += 1
                    p = path.format(n=n)
                    body = b"hostile mirror's file\n" * 500
                    if kind == "missing upstream":
                        mirror.behaviours[p] = Behaviour(status=404)
                    elif kind == "upstream error":
                        mirror.behaviours[p] = Behaviour(status=500)
                    else:
                        mirror.put(p.split("?")[0], body)
                    r = c.request("HEAD" if kind == "HEAD" else "GET", mirror.base + p, headers=headers)
                    _check(r, f"{kind}, redirect to {what}")
                    assert r.headers["x-cache"] in ("MISS", "HIT"), (kind, what, r.headers)
                    if kind.startswith("package miss") or kind == "passed through":
                        assert r.status_code in (200, 206) and r.content == body, (kind, what, r.status_code)
                        assert r.headers["x-cache"] == "MISS", (kind, what)  # not the mirror's forged HIT
            # what was stored is the mirror's file, and it is served as such from the published tree
            r = c.get(mirror.base + "/debian/pool/main/h/h1/h1_1.0_all.deb")
            _check(r, "hit")
            assert r.content == b"hostile mirror's file\n" * 500
        assert service.connections == 0  # not one connection, on any path, the refused direct request included
    finally:
        tier.stop()
        mirror.stop()
        other.stop()


def test_nginx_fetches_only_a_granted_download(tmp_path: Path, service: Service) -> None:
    """nginx alone, as the tier configures it, behind a stand-in worker that answers whatever redirect the
    test chooses: only the token, address and Host a worker granted are fetched, once; the rest is refused
    (403) and logged, and the refused address never sees a connection."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "origin").mkdir()
    origin = Origin(tmp_path / "origin").start()
    body = b"the granted download\n" * 100
    origin.put("/debian/pool/x.deb", body)
    where: list[str] = [""]

    class Worker(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("X-Accel-Redirect", where[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

    worker = ThreadingHTTPServer(("127.0.0.1", 0), Worker)
    threading.Thread(target=worker.serve_forever, daemon=True).start()
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "front").mkdir()
    t = Tier(listen_host="127.0.0.1", listen_port=free_port(), workers=[worker.server_address[1]],
             nginx_port=free_port(), published=tmp_path / "front", run_dir=run,
             user="root" if os.geteuid() == 0 else None)
    t.make_dirs()
    (run / "nginx.conf").write_text(nginx_conf(t))
    nginx = subprocess.Popen(["nginx", "-p", str(run), "-e", "stderr", "-c", str(run / "nginx.conf")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(nginx.stdout), daemon=True).start()  # type: ignore[arg-type]
    authority = f"127.0.0.1:{origin.port}"
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", t.nginx_port)) == 0, timeout=10, what="nginx")

        def ask(redirect: str) -> httpx.Response:
            where[0] = redirect
            with httpx.Client(proxy=f"http://127.0.0.1:{t.nginx_port}", trust_env=False, timeout=10) as c:
                return c.get(f"http://{authority}/debian/pool/x.deb", headers={"X-Pkgcache-Authority": authority})

        token = f"{os.getpid():08x}{secrets.token_hex(12)}"
        give(run, token, authority, authority)
        r = ask(f"{FETCH_PREFIX}{token}/{authority}/{authority}")
        assert r.status_code == 200 and r.content == body  # the worker's own grant: fetched
        take_back(run, token)  # the download was logged: the worker takes its grant back
        refused = {
            "replayed": f"{FETCH_PREFIX}{token}/{authority}/{authority}",
            "forged": f"{FETCH_PREFIX}{secrets.token_hex(16)}/{authority}/{authority}",
        }
        other = f"{os.getpid():08x}{secrets.token_hex(12)}"
        give(run, other, authority, authority)
        refused |= {"another address": f"{FETCH_PREFIX}{other}/127.0.0.1:{service.port}/{authority}",
                    "another Host": f"{FETCH_PREFIX}{other}/{authority}/mirror.example"}
        for why, redirect in refused.items():
            r = ask(redirect)
            assert r.status_code == 403 and body not in r.content and SECRET not in r.content, why
        r = ask(f"{FETCH_PREFIX}{other}/{authority}/..")  # nginx resolves the dot segment: no fetch location
        assert r.status_code == 404 and body not in r.content
        assert origin.count("/debian/pool/x.deb") == 1 and service.connections == 0
        wait_for(lambda: sum(REFUSED in line for line in out) == len(refused), timeout=5, what="nginx's lines")
    finally:
        nginx.terminate()
        nginx.wait(10)
        worker.shutdown()
        origin.stop()
