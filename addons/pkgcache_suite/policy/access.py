"""Who may ask for what: pure parsing of the access options and the checks built on them."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence, Set as AbstractSet


def same_authority_form(value: str, scheme: str) -> str:
    """host[:port] in one spelling: lower case, the scheme's default port left out."""
    v = value.lower()
    default = ":443" if scheme == "https" else ":80"
    return v[: -len(default)] if v.endswith(default) else v


def parse_ports(value: str) -> set[int]:
    try:
        ports = {int(p) for p in value.replace(",", " ").split()}
    except ValueError:
        raise ValueError(f"pkgcache_allow_ports: expected port numbers, got {value!r}") from None
    if any(not 0 <= p <= 65535 for p in ports):
        raise ValueError(f"pkgcache_allow_ports: ports are 0 (any) to 65535, got {value!r}")
    return ports


def parse_networks(value: str, name: str = "pkgcache_allow_clients") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for item in value.replace(",", " ").split():
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not an address or network") from None
    return nets


def client_allowed(peer: str | None, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """An empty list allows every client; an address that cannot be parsed is never allowed."""
    if not networks:
        return True
    if not peer:
        return False
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def port_allowed(port: int, allowed: AbstractSet[int]) -> bool:
    return 0 in allowed or port in allowed


@functools.lru_cache(maxsize=4096)
def network_of(address: str) -> str:
    """A client's /24 (IPv4) or /64 (IPv6): what the report groups clients by (a lab, a CI subnet)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))
