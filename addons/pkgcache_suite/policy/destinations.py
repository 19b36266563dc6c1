"""Which destinations a client may make the proxy connect to, and which host a cache key names.

A LAN cache must not become a way into the machine it runs on: loopback and
link-local addresses (the proxy host's own services, a cloud metadata
endpoint) are refused unless the admin allows them.  Private LAN ranges stay
allowed, because local mirrors live there.

The ``Host`` header is the client's word.  The cache key comes from where the
request really goes: the request target.  Only a transparently redirected
request, whose target is a bare address, may be filed under the name in its
``Host`` header, and only when that name resolves to that very address (the
lookups are transfer.resolver's).
"""

from __future__ import annotations

import ipaddress

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
