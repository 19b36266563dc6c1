"""The pin list: shell patterns on cache keys or URLs of files that expire and size eviction never delete.

Kept in the cache root (``.pkgcache/pins``, one pattern per line, ``#``
comments), so the CLI, a timer and the proxy's own page all honour the same
list.  Managed with ``pkgcache pin``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

FILENAME = "pins"


def pins_path(private_dir: Path) -> Path:
    return private_dir / FILENAME


def read_pins(private_dir: Path) -> list[str]:
    try:
        text = pins_path(private_dir).read_text()
    except FileNotFoundError:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def write_pins(private_dir: Path, patterns: list[str]) -> None:
    path = pins_path(private_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{p}\n" for p in dict.fromkeys(patterns)))
    tmp.replace(path)


def is_pinned(patterns: list[str], key: str, url: str = "") -> bool:
    return any(fnmatch.fnmatch(key, p) or (url and fnmatch.fnmatch(url, p)) for p in patterns)
