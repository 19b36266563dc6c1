"""The pure parsers of option values: a string in, a typed value out, or ``ValueError`` naming the option.

The addons turn that error into mitmproxy's ``OptionsError`` (proxy/options.py),
so a bad value stops mitmdump at start with one line.  A parser may look at the
file system (a folder must exist) but changes nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pkgcache_suite.mountpoints import check_place


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pkgcache")


def parse_cache_dir(value: str) -> Path:
    if not value.strip():
        raise ValueError("pkgcache_dir='': expected a directory for the cache")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"pkgcache_dir={value!r}: exists and is not a directory")
    unmounted = check_place(str(path))
    if unmounted:
        raise ValueError(f"pkgcache_dir={value!r}: {unmounted}")
    if not path.exists() and not path.parent.is_dir() and str(path) != default_cache_dir():
        # a mistyped deep path is refused; a new cache folder in a folder that exists is made
        raise ValueError(f"pkgcache_dir={value!r}: {path.parent} does not exist (create it first)")
    return path


def parse_optional_file(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_file():
        raise ValueError(f"{name}={value!r}: not a readable file")
    return path


def parse_optional_dir(name: str, value: str) -> Path | None:
    path = Path(value).expanduser() if value else None
    if path and not path.is_dir():
        raise ValueError(f"{name}={value!r}: not a directory")
    return path


def parse_keyrings(name: str, value: str) -> tuple[Path, ...]:
    """Keyring files or folders of them, separated by ':' (empty: none given)."""
    out = []
    for part in (p for p in value.split(":") if p.strip()):
        path = Path(part.strip()).expanduser()
        if not path.exists():
            raise ValueError(f"{name}={value!r}: {part} is neither a keyring file nor a folder of them")
        out.append(path)
    return tuple(out)


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse_size(name: str, value: str | int, high: int) -> int:
    """A byte count: 1048576, 512K, 1M, 2G (binary units; KiB/MiB/GiB and KB/MB/GB read the same)."""
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{name}={value!r}: expected a size such as 1048576, 512K, 1M or 2G")
    size = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if size > high:
        raise ValueError(f"{name}={value!r}: at most {high >> 20}M" if high < 1 << 40 else f"{name}={value!r}: too large")
    return size


def parse_bounded(name: str, value: str | int, low: int, high: int, unit: str) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise ValueError(f"{name}={value!r}: expected a whole number of {unit} from {low} to {high}")
    n = int(text)
    if not low <= n <= high:
        raise ValueError(f"{name}={value!r}: expected a whole number of {unit} from {low} to {high}")
    return n


def parse_bool(name: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in _TRUE or v in _FALSE:
        return v in _TRUE
    raise ValueError(f"{name}={value!r}: expected true or false")


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def parse_datastore(name: str, value: str) -> str:
    """A datastore folder an admin names must be there: an existing folder, or one to make directly on a
    mounted stick's root; ``usb`` follows whichever stick is mounted; empty means the cache's own.  Anything
    else (a typo, a stick that is not mounted) is refused before anything is written, so no wanted list ever
    lands where the stick should have been."""
    named = value.strip()
    if not named or named == "usb":
        return named
    path = Path(named).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise ValueError(f"{name}={named!r}: expected a folder or usb")
    unmounted = check_place(str(path))
    if unmounted:
        raise ValueError(f"{name}={named!r}: {unmounted}")
    if not os.path.lexists(path) and not os.path.ismount(path.parent):
        raise ValueError(f"{name}={named!r}: does not exist; create the folder first "
                         f"(mkdir {path}), or name a mounted stick's folder")
    return named


def parse_usb_events(name: str, value: str) -> str:
    if value != "udev" and not value.startswith("file:"):
        raise ValueError(f"{name}={value!r}: expected udev or file:PATH")
    return value


def parse_readable_file(name: str, value: str) -> Path:
    if not Path(value).is_file():
        raise ValueError(f"{name}={value!r}: not a readable mount table")
    return Path(value)


def parse_deb_arch(name: str, value: str) -> tuple[str, ...]:
    archs = tuple(a.strip() for a in value.split(",") if a.strip())
    if any(not re.fullmatch(r"[a-z0-9][a-z0-9-]*", a) for a in archs):
        raise ValueError(f"{name}={value!r}: expected Debian architectures such as amd64,arm64")
    return archs


def parse_host_patterns(name: str, value: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower() for h in value.split(",") if h.strip())
    if any(not re.fullmatch(r"[a-z0-9*?\[\]._-]+", h) for h in hosts):
        raise ValueError(f"{name}={value!r}: expected host names or patterns such as mirror.example,*.mirror.example")
    return hosts
