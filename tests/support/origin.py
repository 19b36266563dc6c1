"""A real origin HTTP server on 127.0.0.1 for tests and benchmarks.

Serves files from a directory with Content-Length, Last-Modified and ETag, answers
conditional requests, logs every request, and can misbehave on demand per path
(trickle slowly, reset mid-body, fail with a status) so failure handling is
exercised against a real socket.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Behaviour:
    status: int | None = None  # answer this status instead of the file
    reset_after: int | None = None  # send this many body bytes, then reset the connection
    delay: float = 0.0  # seconds before the headers
    chunk_delay: float = 0.0  # seconds between 64 KiB chunks
    chunked: bool = False  # no Content-Length; chunked transfer encoding
    gate_at: int | None = None  # send this many body bytes, then wait for gate to be set
    gate: threading.Event = field(default_factory=threading.Event)
    reset_at_gate: bool = False  # when the gate opens, reset the connection instead of finishing
    fail_times: int = 0  # answer 503 this many times, then serve normally
    close_delimited: bool = False  # no Content-Length, no chunked encoding: the body ends when the connection closes
    truncate_to: int | None = None  # send only this many body bytes, then close cleanly
    content_length: int | None = None  # announce this Content-Length whatever the body
    html: bool = False  # answer 200 text/html with a login page (a captive portal)
    html_body_as: str | None = None  # answer 200 with an HTML page under this Content-Type
    redirect: str | None = None  # answer 302 to this location
    stall_after: int | None = None  # send this many body bytes, then send nothing for `stall` seconds
    stall: float = 60.0
    negotiate: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # Accept substring -> (body, type)
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra response headers for this path
    body: bytes | None = None  # answer 200 with these bytes (for a raw target the file tree cannot name)


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Origin:
    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    log: list[LoggedRequest] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve HTTPS
    extra_headers: list[tuple[str, str]] = field(default_factory=list)  # sent with every answer (a hostile mirror)
    close_every: int = 0  # every Nth answer closes its connection, as a mirror's keep-alive limit does
    answered: int = 0

    def start(self) -> Origin:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def end_headers(self) -> None:
                for name, value in [*origin.extra_headers, *getattr(self, "path_headers", [])]:
                    self.send_header(name, value)
                if getattr(self, "last_on_connection", False):
                    self.send_header("Connection", "close")
                    self.close_connection = True
                super().end_headers()

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_POST(self) -> None:
                """Logged (a test may count what reached the origin) and refused, as a mirror refuses it."""
                origin.log.append(LoggedRequest(self.command, self.path.split("?", 1)[0],
                                                {k.lower(): v for k, v in self.headers.items()}))
                self.close_connection = True
                self.send_error(501)

            def _reset(self) -> None:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
                self.close_connection = True

            def _serve(self, head: bool) -> None:
                path = self.path.split("?", 1)[0]
                origin.log.append(LoggedRequest(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
                b = origin.behaviours.get(path, Behaviour())
                self.path_headers = b.headers
                origin.answered += 1
                self.last_on_connection = bool(origin.close_every) and origin.answered % origin.close_every == 0
                if b.fail_times > 0:
                    b.fail_times -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if b.delay:
                    time.sleep(b.delay)
                if b.redirect:
                    self.send_response(302)
                    self.send_header("Location", b.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if b.html or b.html_body_as:
                    page = b"<!DOCTYPE html><html><head><title>Log in</title></head><body>Wi-Fi login</body></html>\n"
                    self.send_response(200)
                    self.send_header("Content-Type", b.html_body_as or "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(page)
                    return
                if b.body is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(b.body)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(b.body)
                    return
                if b.negotiate:
                    accept = self.headers.get("Accept", "")
                    body, ctype = next((v for k, v in b.negotiate.items() if k in accept),
                                       next(iter(b.negotiate.values())))
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Vary", "Accept")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(body)
                    return
                if b.status:
                    body = f"status {b.status}\n".encode()
                    self.send_response(b.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                fs = origin.root / unquote(path).lstrip("/")
                real = os.path.realpath(fs)
                if not real.startswith(os.path.realpath(origin.root) + os.sep) or not fs.is_file():
                    self.send_error(404)
                    return
                st = fs.stat()
                etag = '"%s"' % hashlib.md5(f"{st.st_mtime_ns}-{st.st_size}".encode()).hexdigest()
                lm = email.utils.formatdate(st.st_mtime, usegmt=True)
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (inm and inm == etag) or (not inm and ims and ims == lm):
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range", "")
                if_range = self.headers.get("If-Range")
                if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit() and (
                        if_range is None or if_range in (etag, lm)):
                    start = int(rng[6:-1])
                if start:
                    if start >= st.st_size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{st.st_size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{st.st_size - 1}/{st.st_size}")
                    self.send_header("Content-Length", str(st.st_size - start))
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", lm)
                    self.end_headers()
                    if not head:
                        with open(fs, "rb") as f:
                            f.seek(start)
                            self.wfile.write(f.read())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Last-Modified", lm)
                self.send_header("ETag", etag)
                if b.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif b.close_delimited:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(st.st_size if b.content_length is None
                                                           else b.content_length))
                self.end_headers()
                if head:
                    return
                with open(fs, "rb") as f:
                    if b.truncate_to is not None or b.content_length is not None:
                        self.wfile.write(f.read(st.st_size if b.truncate_to is None else b.truncate_to))
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if b.stall_after is not None:
                        self.wfile.write(f.read(b.stall_after))
                        self.wfile.flush()
                        time.sleep(b.stall)
                        self.close_connection = True
                        return
                    if b.reset_after is not None:
                        self.wfile.write(f.read(b.reset_after))
                        self._reset()
                        return
                    if b.gate_at is not None:
                        self.wfile.write(f.read(b.gate_at))
                        self.wfile.flush()
                        if not b.gate.wait(60):
                            raise RuntimeError("gate never opened")
                        if b.reset_at_gate:
                            self._reset()
                            return
                        self.wfile.write(f.read())
                        return
                    if b.chunked or b.chunk_delay:
                        while data := f.read(65536):
                            if b.chunked:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            else:
                                self.wfile.write(data)
                            self.wfile.flush()
                            time.sleep(b.chunk_delay)
                        if b.chunked:
                            self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.wfile.flush()
                        self.connection.sendfile(f)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.server = Server((self.host, self.port), Handler)
        self.port = self.server.server_address[1]
        if self.tls:
            import ssl

            sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sslctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self.server.socket = sslctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> Origin:
        """Serve again on the same port (after stop()), keeping the request log."""
        return self.start()

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for r in self.log if r.path == path and r.method == method)

    def put(self, rel: str, data: bytes) -> Path:
        p = self.root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p


def make_file(path: Path, size: int, seed: int = 0) -> str:
    """Write size pseudo-random bytes without holding them all; returns the SHA-256."""
    h = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB pattern
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            piece = (i.to_bytes(8, "big") + block)[: min(left, len(block))]
            f.write(piece)
            h.update(piece)
            left -= len(piece)
            i += 1
    return h.hexdigest()
