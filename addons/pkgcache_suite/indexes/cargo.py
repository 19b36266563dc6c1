"""cargo's sparse registry index: `config.json` says where crates are downloaded from, and one file per
crate lists its versions, one JSON object a line, each with the SHA-256 (`cksum`) of its `.crate`.

That digest is what a downloaded `.crate` is checked against before it is stored, and the file's lines are
what `pkgcache fetch` follows to bring a crate and what it depends on in one trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from pkgcache_suite.indexes.compression import lines

MAX_CONFIG = 64 << 10
MAX_LINE = 4 << 20
MAX_FILE = 64 << 20  # a crate's index file has no blank line: one paragraph, bounded
# the path of a crate's index file under the index root: 1/a, 2/ab, 3/a/abc, ab/cd/abcd...
INDEX_FILE = re.compile(r"^(?P<root>.+)/(?:1|2|3/[^/]|[^/]{2}/[^/]{2})/(?P<name>[a-z0-9_-]+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Dependency:
    name: str  # the crate's own name (a renamed dependency's `package`)
    kind: str  # normal, build or dev
    other_registry: bool  # from a registry other than this one


@dataclass(frozen=True)
class Version:
    name: str
    vers: str
    cksum: str | None  # SHA-256 of the .crate, lower case; None when the line gives none that is one
    yanked: bool
    deps: tuple[Dependency, ...]


def index_path(name: str) -> str:
    """Where cargo looks for a crate's index file under the index root (cargo's own layout)."""
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def index_name(path: str) -> tuple[str, str] | None:
    """(index root, crate name) of a path that is laid out as a crate's index file; None otherwise."""
    m = INDEX_FILE.match(path)
    if m is None or index_path(m.group("name")) != path[len(m.group("root")) + 1:]:
        return None
    return m.group("root"), m.group("name")


def download_template(stream: IO[bytes]) -> str:
    """`dl` of a config.json; ValueError when it is not one."""
    data = stream.read(MAX_CONFIG + 1)
    if len(data) > MAX_CONFIG:
        raise ValueError("config.json is larger than any registry's")
    try:
        dl = json.loads(data).get("dl")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"config.json is not a JSON object: {e}") from None
    if not isinstance(dl, str) or not dl:
        raise ValueError("config.json names no download URL (dl)")
    return dl


def download_url(dl: str, v: Version) -> str:
    """The .crate URL of a version, by cargo's rules for `dl` (markers, or `/{crate}/{version}/download`)."""
    markers = ("{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}")
    if not any(m in dl for m in markers):
        return f"{dl.rstrip('/')}/{v.name}/{v.vers}/download"
    prefix = index_path(v.name).rsplit("/", 1)[0]
    return (dl.replace("{crate}", v.name).replace("{version}", v.vers).replace("{prefix}", prefix)
            .replace("{lowerprefix}", prefix.lower()).replace("{sha256-checksum}", v.cksum or ""))


def versions(stream: IO[bytes]) -> Iterator[Version]:
    """Every version an index file lists (lines that are not a version are passed over)."""
    for raw in lines(stream, max_line=MAX_LINE, max_paragraph=MAX_FILE):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(obj.get("vers"), str):
            continue
        cksum = obj.get("cksum")
        cksum = cksum.lower() if isinstance(cksum, str) and _SHA256.match(cksum.lower()) else None
        yield Version(obj["name"], obj["vers"], cksum, obj.get("yanked") is True, tuple(_deps(obj.get("deps"))))


def _deps(raw: object) -> Iterator[Dependency]:
    for d in raw if isinstance(raw, list) else []:
        if isinstance(d, dict) and isinstance(d.get("name"), str):
            name = d["package"] if isinstance(d.get("package"), str) else d["name"]
            yield Dependency(name, str(d.get("kind") or "normal"), d.get("registry") is not None)


def newest(listed: list[Version]) -> Version | None:
    """The newest version not yanked and not a pre-release: what a fresh `cargo fetch` of a plain
    requirement takes (a pre-release, or yanked ones, when nothing else is listed)."""
    pool = ([v for v in listed if not v.yanked and "-" not in v.vers] or [v for v in listed if not v.yanked]
            or listed)
    return max(pool, key=lambda v: _order(v.vers), default=None)


def _order(vers: str) -> tuple[tuple[int, ...], int, str]:
    core, _, pre = vers.split("+", 1)[0].partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in core.split("."))
    return nums, 0 if pre else 1, pre
