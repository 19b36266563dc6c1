"""Reading what `pkgcache serve --workers N` was given: the listen address is the front's, the rest of the
mitmdump arguments go to every worker, and the access rules also become the front's."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pkgcache_suite.policy.access import parse_networks, parse_ports


@dataclass
class TierArgs:
    listen_host: str = ""
    listen_port: int = 8080
    worker_args: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # --set name=value, the last of each

    @property
    def allow_clients(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return parse_networks(self.settings.get("pkgcache_allow_clients", ""))

    def allow_ports(self, conf_ports: set[int] | None) -> set[int]:
        if conf_ports is not None:
            return conf_ports
        return parse_ports(self.settings.get("pkgcache_allow_ports", "80,443"))


class TierArgsError(ValueError):
    pass


def split_args(extra: list[str]) -> TierArgs:
    """The listen address out of mitmdump's arguments; everything else is kept for the workers."""
    out = TierArgs()
    i = 0
    while i < len(extra):
        arg = extra[i]
        name, eq, inline = arg.partition("=")
        if name in ("-p", "--listen-port", "--listen-host", "--mode", "-m"):
            value = inline if eq else (extra[i + 1] if i + 1 < len(extra) else "")
            i += 1 if eq else 2
            if name in ("--mode", "-m"):
                if value != "regular":
                    raise TierArgsError(f"--mode {value}: a tier of workers runs as a regular proxy only; run "
                                        "other modes without --workers")
            elif name == "--listen-host":
                out.listen_host = value
            elif not value.isdigit() or not 0 < int(value) < 65536:
                raise TierArgsError(f"{name} {value!r}: expected a port number")
            else:
                out.listen_port = int(value)
            continue
        if arg == "--set" and i + 1 < len(extra):
            k, _, v = extra[i + 1].partition("=")
            out.settings[k] = v
            out.worker_args += [arg, extra[i + 1]]
            i += 2
            continue
        out.worker_args.append(arg)
        i += 1
    return out
