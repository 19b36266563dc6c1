"""Cached, bounded name lookups: destination checks and the cache-key host of transparently redirected requests.

The decisions are policy.destinations'; this module only asks the resolver,
at most once per name per minute and never for longer than two seconds.
"""

from __future__ import annotations

import asyncio
import socket
import time

from pkgcache_suite.policy.destinations import is_local_address, local_literal, parse_ip

RESOLVE_TTL = 60.0
RESOLVE_TIMEOUT = 2.0


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
