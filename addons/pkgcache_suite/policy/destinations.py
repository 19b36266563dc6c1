"""Which destinations a client may make the proxy connect to, and which host a cache key names.

A LAN cache must not become a way into the machine it runs on: loopback and
link-local addresses (the proxy host's own services, a cloud metadata
endpoint) are refused unless the admin allows them.  Private LAN ranges stay
allowed, because local mirrors live there.

The ``Host`` header is the client's word.  The cache key comes from where the
request really goes: the request target.  Only a transparently redirected
request, whose target is a bare address, may be filed under the name in its
``Host`` header, and only when that name resolves to that very address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

RESOLVE_TTL = 60.0
RESOLVE_TIMEOUT = 2.0


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def is_local_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local or unspecified (0.0.0.0 reaches the local host too)."""
    return addr.is_loopback or addr.is_link_local or addr.is_unspecified


def is_local_name(host: str) -> bool:
    h = host.lower().rstrip(".")
    return h == "localhost" or h.endswith(".localhost")


def local_literal(host: str) -> bool | None:
    """True/False when host alone decides (an address or a localhost name), None when a lookup must."""
    addr = parse_ip(host)
    if addr is not None:
        return is_local_address(addr)
    if is_local_name(host):
        return True
    return None


class Resolver:
    """Cached, bounded name lookups for the request hook (one lookup per name per minute)."""

    def __init__(self, ttl: float = RESOLVE_TTL, timeout: float = RESOLVE_TIMEOUT) -> None:
        self.ttl, self.timeout = ttl, timeout
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def addresses(self, host: str) -> frozenset[str]:
        now = time.monotonic()
        hit = self._cache.get(host)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), self.timeout)
            found = frozenset(str(parse_ip(str(i[4][0]))) for i in infos)
        except (OSError, asyncio.TimeoutError, TimeoutError, UnicodeError):
            found = frozenset()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[host] = (now, found)
        return found

    async def is_local(self, host: str) -> bool:
        decided = local_literal(host)
        if decided is not None:
            return decided
        addrs = await self.addresses(host)
        return any(is_local_address(a) for a in (parse_ip(x) for x in addrs) if a is not None)

    async def key_host(self, target: str, host_header: str | None) -> str:
        """The host a transparently redirected request is filed under: the Host name if it resolves
        to the target address, else the address itself."""
        if not host_header or parse_ip(target) is None:
            return target
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        if parse_ip(name) is not None or not name:
            return target
        addrs = await self.addresses(name.lower())
        return name.lower() if str(parse_ip(target)) in addrs else target
