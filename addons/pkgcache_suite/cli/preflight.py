"""One reachability check before a long run: a proxy or origin that is down is one line, not one error per file."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

TIMEOUT = 5.0


def _endpoint(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def unreachable(proxy: str | None, urls: Iterable[str]) -> str | None:
    """Why the run cannot start (the proxy, or every origin, refuses a TCP connection), or None."""
    targets = [_endpoint(proxy)] if proxy else list(dict.fromkeys(_endpoint(u) for u in urls))
    problems = []
    for target in targets:
        if target is None:
            continue
        try:
            socket.create_connection(target, timeout=TIMEOUT).close()
            return None
        except OSError as e:
            problems.append(f"{'proxy ' if proxy else ''}{target[0]}:{target[1]}: {e.strerror or e}")
    return "; ".join(problems) or None
