"""Raw HTTP to the proxy: bytes as a hostile client would send them, never normalised by a client library."""

from __future__ import annotations

import socket

from support.proxy import Proxy


def raw(proxy: Proxy, data: bytes, timeout: float = 20.0, source: str | None = None) -> tuple[int, bytes, bytes]:
    """Send bytes as they are; (status, head, body) of the answer, or status 0 when the proxy closed.
    source: the loopback address to send from (another machine, to the proxy)."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(data)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                piece = s.recv(65536)
                if not piece:
                    break
                buf += piece
            head, _, body = buf.partition(b"\r\n\r\n")
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while length is None or len(body) < length:  # no length: the body ends when the proxy closes
                piece = s.recv(65536)
                if not piece:
                    break
                body += piece
        except (TimeoutError, ConnectionResetError):
            pass
    if not buf.startswith(b"HTTP/"):
        return 0, buf, b""
    return int(buf.split(b" ", 2)[1]), head, body


def get(proxy: Proxy, url: str, host: str | None = None, extra: str = "",
        source: str | None = None) -> tuple[int, bytes, bytes]:
    from urllib.parse import urlsplit

    h = host if host is not None else urlsplit(url).netloc
    return raw(proxy, f"GET {url} HTTP/1.1\r\nHost: {h}\r\n{extra}Connection: close\r\n\r\n".encode(),
               source=source)
