"""Each addon's settings as one immutable value, built from the options by settings/table.py.

``ctx.options.X`` deep-copies on every read, so hooks never read options: they
read the value built once per ``configure()``.  Where a config file and an
option both say something (AllowUserPorts and pkgcache_allow_ports), the
property that combines them is here, so every reader gets the same answer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pkgcache_suite.repos.config import RepoConfig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    """The cache addon's: where the cache is, how files are classified, the transfer's bounds."""

    SECTION: ClassVar[str] = "cache"
    cache_dir: Path
    filter_file: Path | None = None
    rules_dir: Path | None = None
    memory_hit_max: int = 1 << 20
    follow_timeout: int = 60
    connect_timeout: int = 15
    idle_timeout: int = 30
    negative_ttl: int = 300
    index_fresh: int = 0  # seconds an index is answered at once while a background refresh runs
    keyrings: tuple[Path, ...] = ()  # every InRelease must verify against these (signing/policy.py)
    max_size: int = 0  # 0: no limit
    min_free: int = 128 << 20
    front_run: Path | None = None  # behind the tier's nginx: its run folder (landing folder, fetch log)


CacheSettings = Settings


@dataclass(frozen=True)
class RouterSettings:
    """The router's: repositories, who may ask for what, which HTTPS is intercepted."""

    SECTION: ClassVar[str] = "router"
    conf: RepoConfig = field(default_factory=RepoConfig)
    allow_ports_option: frozenset[int] = frozenset({80, 443})
    allow_clients: tuple[Network, ...] = ()
    trusted_front: tuple[Network, ...] = ()
    force_managed_option: bool = False
    intercept: tuple[str, ...] = ()
    allow_loopback: bool = False
    admin_password: str = ""

    @property
    def allow_ports(self) -> frozenset[int]:
        """AllowUserPorts in a config file wins over the option."""
        return frozenset(self.conf.allow_ports) if self.conf.allow_ports is not None else self.allow_ports_option

    @property
    def force_managed(self) -> bool:
        return self.conf.force_managed if self.conf.force_managed is not None else self.force_managed_option

    @property
    def admin_auth(self) -> str | None:
        """``user:password`` for the report page's state-changing actions: AdminAuth, else the option's."""
        return self.conf.admin_auth or (f"admin:{self.admin_password}" if self.admin_password else None)


@dataclass(frozen=True)
class OfflineSettings:
    """The offline addon's: when upstream counts as gone, where the datastore is, where sticks come from."""

    SECTION: ClassVar[str] = "offline"
    cache_dir: Path
    mode: str = "auto"
    probe_interval: int = 3
    datastore: str = ""  # a folder, "usb", or "" for the cache's own
    usb_events: str = "udev"
    mounts: Path = Path("/proc/mounts")
    deb_arch: tuple[str, ...] = ()  # empty: dpkg's, found when applied
