"""The lines an admin reads once the proxy runs: what to give clients at each listener, where the dashboard is."""

from __future__ import annotations

import logging

from mitmproxy import ctx

log = logging.getLogger("pkgcache")


def ready_line(kind: str, shown: str, port: int) -> str:
    """What clients of one listener are told to use, by the listener's mode."""
    where = f"http://{shown}:{port}"
    if kind == "reverse":
        return (f"mirror-style URLs {where}/REPOSITORY-NAME/... or {where}/HOSTNAME/path in clients' sources "
                f"(no proxy setting)")
    if kind == "transparent":
        return f"transparent: traffic redirected to port {port} is cached (no client setting); dashboard at {where}/"
    return f"clients use {where} as their proxy (apt: Acquire::http::Proxy); dashboard at {where}/"


def say_where(offline_mode: str) -> None:
    """One line per listener an admin can act on, and one when upstream is never contacted."""
    server = ctx.master.addons.get("proxyserver") if ctx.master else None
    said: set[tuple[str, str, int]] = set()
    for instance in getattr(server, "servers", []) if server is not None else []:
        for host, port, *_ in instance.listen_addrs:
            shown = "PROXY-HOST" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
            said.add((instance.mode.type_name, shown, port))
    for kind, shown, port in sorted(said):
        log.info("pkgcache: ready: %s", ready_line(kind, shown, port))
    if offline_mode == "on":
        log.info("pkgcache: offline (pkgcache_offline=on): upstream is never contacted; misses are answered "
                 "locally and recorded in the wanted list")
