"""Every ``pkgcache_*`` option in one table, and the one pure parse from options to an addon's settings.

A row names the option, its default and help (what mitmweb's option editor
shows), its parser, and which addons' settings read it under which field.  The
addon that declares it to mitmproxy is the first of those.  Every value is a
string to mitmproxy and is parsed here: a value mitmproxy itself failed to
parse would make it drop the whole suite silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pkgcache_suite.policy.access import parse_networks, parse_ports
from pkgcache_suite.repos.config import parse_conf
from pkgcache_suite.settings.parsers import (
    default_cache_dir, parse_bool, parse_bounded, parse_cache_dir, parse_choice, parse_datastore, parse_deb_arch,
    parse_host_patterns, parse_keyrings, parse_optional_dir, parse_optional_file, parse_readable_file, parse_size,
    parse_usb_events)


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    help: str
    parse: Callable[[str, str], Any]  # (option name, value) -> the field's value; ValueError names the option
    field: str
    sections: tuple[str, ...]  # the settings that read it; the first section's addon declares it
    choices: tuple[str, ...] | None = None


def _seconds(low: int, high: int) -> Callable[[str, str], int]:
    return lambda name, value: parse_bounded(name, value, low, high, "seconds")


def _size(high: int) -> Callable[[str, str], int]:
    return lambda name, value: parse_size(name, value, high)


OPTIONS: tuple[Option, ...] = (
    # -- the cache -----------------------------------------------------------------------------------------
    Option("pkgcache_dir", default_cache_dir(), "Cache root: bodies under host/path, index in .pkgcache/.",
           lambda _, v: parse_cache_dir(v), "cache_dir", ("cache", "offline")),
    Option("pkgcache_filter", "", "Filter file: one regex per line (full URL) never cached; "
           "'immutable|volatile|pass REGEX' forces a class.", parse_optional_file, "filter_file", ("cache",)),
    Option("pkgcache_rules", "", "Directory of classification rules (*.conf); default: the shipped ones "
           "(pkgcache_suite/rules).", parse_optional_dir, "rules_dir", ("cache",)),
    Option("pkgcache_memory_hit_max", "1M", "Hits up to this size (1048576, 512K, 1M) are answered from memory; "
           "larger ones are streamed from disk.", _size(64 << 20), "memory_hit_max", ("cache",)),
    Option("pkgcache_follow_timeout", "60", "Seconds a request waits for another download of the same URL to "
           "start before going upstream itself.", _seconds(1, 86400), "follow_timeout", ("cache",)),
    Option("pkgcache_connect_timeout", "15", "Seconds a download may take to connect to upstream before it is "
           "given up.", _seconds(1, 3600), "connect_timeout", ("cache",)),
    Option("pkgcache_idle_timeout", "30", "Seconds upstream may send nothing (before or during the body) before "
           "the download is cut; nothing is stored and the clients waiting for it are told at once.",
           _seconds(1, 86400), "idle_timeout", ("cache",)),
    Option("pkgcache_negative_ttl", "300", "Seconds a 404 from upstream for a package file or index is repeated "
           "without asking again (0: never); offline, a URL upstream said does not exist is answered 404 and not "
           "added to the wanted list.", _seconds(0, 86400), "negative_ttl", ("cache",)),
    Option("pkgcache_keyrings", "", "Keyrings (files, or folders of .gpg/.asc keyrings and Alpine .rsa.pub keys, "
           "separated by ':') every signed index must be signed by to be stored: a Debian InRelease, or Release "
           "with Release.gpg, an RPM repomd.xml with repomd.xml.asc, a pacman .db with .db.sig, an APKINDEX. One "
           "that does not verify is never stored or served as current (the last good one is served, X-Cache: "
           "STALE, and the dashboard says so). A Remap line's keyring= wins for its repository. Empty: Debian's "
           "and Ubuntu's own archives (Origin: Debian or Ubuntu) are checked against the system's "
           "/usr/share/keyrings, others are not checked.", parse_keyrings, "keyrings", ("cache",)),
    Option("pkgcache_index_fresh", "0", "Seconds after an index was last confirmed by upstream during which it is "
           "answered at once from the cache while one refresh runs in the background (RFC 5861 "
           "stale-while-revalidate; 0: every request for an index is revalidated before it is answered).",
           _seconds(0, 86400), "index_fresh", ("cache",)),
    Option("pkgcache_max_size", "0", "Largest the cache may grow (50G, 500M; 0: no limit). Above it, the least "
           "recently used files are removed, those no cached index lists first; pinned files (pkgcache pin) "
           "never.", _size(1 << 60), "max_size", ("cache",)),
    Option("pkgcache_front_fetch", "", "Set by pkgcache serve --workers: the tier's run folder. Misses of package "
           "files are then fetched and stored by the tier's nginx and admitted here, and hits are handed to "
           "nginx; empty: this proxy moves every byte.", parse_optional_dir, "front_run", ("cache",)),
    Option("pkgcache_min_free", "128M", "Free disk space to keep on the cache's disk: below it, new files are "
           "passed on without being stored, and an error is logged (0: fill the disk).", _size(1 << 60),
           "min_free", ("cache",)),
    # -- the router ----------------------------------------------------------------------------------------
    Option("pkgcache_conf", "", "Repository/remapping config files (apt-cacher-ng syntax), comma-separated.",
           lambda _, v: parse_conf(v), "conf", ("router",)),
    Option("pkgcache_allow_ports", "80,443", "Ports clients may name in URLs and CONNECT (0 = any); "
           "AllowUserPorts in a config wins.", lambda _, v: frozenset(parse_ports(v)), "allow_ports_option",
           ("router",)),
    Option("pkgcache_allow_clients", "", "Client addresses/networks allowed to use the proxy (comma-separated); "
           "empty = all.", lambda n, v: tuple(parse_networks(v, n)), "allow_clients", ("router",)),
    Option("pkgcache_trusted_front", "", "Addresses of a front (HAProxy, nginx; comma-separated) whose "
           "X-Forwarded-For names the client: access control and the counters use that client. Empty: believe "
           "no one.", lambda n, v: tuple(parse_networks(v, n)), "trusted_front", ("router",)),
    Option("pkgcache_force_managed", "false", "Refuse URLs that belong to no configured repository "
           "(apt-cacher-ng's ForceManaged).", parse_bool, "force_managed_option", ("router",)),
    Option("pkgcache_intercept_hosts", "", "Host patterns (comma-separated, * wildcards) whose HTTPS is "
           "intercepted with mitmproxy's CA and cached; all other HTTPS is tunnelled untouched.",
           parse_host_patterns, "intercept", ("router",)),
    Option("pkgcache_allow_loopback", "false", "Let clients name loopback and link-local destinations (the proxy "
           "host's own services); refused by default. Private LAN ranges are always allowed.", parse_bool,
           "allow_loopback", ("router",)),
    Option("pkgcache_admin_password", "", "Password (user 'admin') for the report page's state-changing actions; "
           "AdminAuth in a config sets user and password.", lambda _, v: v, "admin_password", ("router",)),
    # -- offline -------------------------------------------------------------------------------------------
    Option("pkgcache_offline", "auto", "auto: behave as offline for hosts that cannot be reached; on: never "
           "contact upstream; off: always pass upstream errors through.",
           lambda n, v: parse_choice(n, v, ("auto", "on", "off")), "mode", ("offline",), ("auto", "on", "off")),
    Option("pkgcache_datastore", "", "Datastore folder for the wanted list and fetched files, or 'usb' to use the "
           "'pkgcache' folder of whichever USB stick is mounted; default: the cache's own (.pkgcache/datastore in "
           "the cache root).", parse_datastore, "datastore", ("offline",)),
    Option("pkgcache_probe_interval", "3", "In offline=auto, seconds a real answer from a route is trusted without "
           "a probe (every answer renews it); a slow probe never makes a request offline.", _seconds(0, 3600),
           "probe_interval", ("offline",)),
    Option("pkgcache_usb_events", "udev", "Where USB device events come from: 'udev', or 'file:PATH' (lines "
           "'add DEVNODE' / 'remove DEVNODE'; for tests and simulation).", parse_usb_events, "usb_events",
           ("offline",)),
    Option("pkgcache_mounts", "/proc/mounts", "Mount table used to find where a stick is mounted.",
           parse_readable_file, "mounts", ("offline",)),
    Option("pkgcache_deb_arch", "", "Debian architectures of the clients (comma-separated), passed to 'pkgcache "
           "fetch' in the wanted list so it can fetch the indexes they will ask for; default: dpkg's.",
           parse_deb_arch, "deb_arch", ("offline",)),
)


def rows(section: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if section in o.sections)


def names(section: str) -> frozenset[str]:
    """The options a section's settings read: what its addon's configure() looks for in ``updated``."""
    return frozenset(o.name for o in rows(section))


def declared_by(section: str) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if o.sections[0] == section)


S = TypeVar("S")


def parse_section(cls: type[S], opts: Any, updated: set[str] | None = None, old: S | None = None) -> S:
    """An addon's settings from mitmproxy's options (any object with the pkgcache_* attributes).  With the
    previous value and the names that changed, only those are parsed again; ValueError names the option."""
    section = getattr(cls, "SECTION")
    mine = rows(section)
    todo = mine if old is None or updated is None else tuple(o for o in mine if o.name in updated)
    values = {o.field: o.parse(o.name, str(getattr(opts, o.name, o.default))) for o in todo}
    return cls(**values) if old is None else replace(old, **values)  # type: ignore[type-var]
