"""Which indexes of a suite `pkgcache fetch` brings: the ones the offline clients use, unless told to bring all.

A Debian suite has far more indexes than a machine reads (contrib, non-free,
every translation, Contents); carrying them all costs stick space and hours.
What the clients use is known, best first, from:

1. their stated index targets (`apt-get indextargets`, sent with a want statement),
2. the index requests the offline proxy saw (components and architectures),
3. nothing: then every component, for the clients' architectures, and English translations.

Each index is fetched in the one compression apt will ask for (the first its
order prefers that the Release lists), under its by-hash name when the suite
publishes them.  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pkgcache_suite.indexes.debian import ReleaseInfo, by_hash_name
from pkgcache_suite.wanted.wantspec import Target

APT_ORDER = ("xz", "bz2", "lzma", "gz", "lz4", "zst", "uncompressed")
_INDEX_DIR = re.compile(r"^(?P<base>.+/dists/.+?/)(?P<comp>[^/]+(?:/[^/]+)?)/(?:binary-(?P<arch>[a-z0-9-]+)|"
                        r"(?P<i18n>i18n))/")


@dataclass(frozen=True)
class Usage:
    """What clients were seen asking of one suite."""

    components: frozenset[str]
    archs: frozenset[str]
    translations: bool


def seen_index(url: str) -> tuple[str, str, str | None, bool] | None:
    """(suite base, component, arch, is a translation) of an index request, by-hash ones included."""
    m = _INDEX_DIR.match(url)
    if m is None:
        return None
    return m["base"], m["comp"], m["arch"], m["i18n"] is not None


def _pick(info: ReleaseInfo, stem: str, compressions: tuple[str, ...] = APT_ORDER) -> str | None:
    for c in compressions:
        name = stem if c == "uncompressed" else f"{stem}.{c}"
        if name in info.entries:
            if info.by_hash:
                return info.base + by_hash_name(name, info.entries[name][1])
            return info.base + name
    return None


def chosen(info: ReleaseInfo, target: Target) -> str | None:
    """The one URL a stated index target is fetched as (its client asks for that one once it has the Release)."""
    return _pick(info, target.name, target.compressions)


def stem(name: str) -> str:
    """An index name without its compression: main/binary-amd64/Packages.xz -> main/binary-amd64/Packages."""
    head, dot, ext = name.rpartition(".")
    return head if dot and ext in APT_ORDER else name


def _stems(info: ReleaseInfo, components: list[str], archs: list[str], languages: list[str] | None) -> list[str]:
    archs = list(archs) + (["all"] if "all" in info.architectures and "all" not in archs else [])
    stems = [f"{c}/binary-{a}/Packages" for c in components for a in archs]
    if languages is None:  # every translation the suite has, for these components
        stems += sorted({name.split(".", 1)[0] for name in info.entries
                         if name.split("/", 1)[0] in components and "/i18n/Translation-" in name})
    else:
        stems += [f"{c}/i18n/Translation-{lang}" for c in components for lang in languages]
    return stems


def select(info: ReleaseInfo, targets: list[Target], usage: Usage | None, archs: list[str],
           everything: bool = False) -> tuple[list[str], str]:
    """The index URLs to fetch for one suite, and in words where that choice came from."""
    urls: list[str] = []
    if everything:
        for stem in _stems(info, info.components, archs, None):
            if (u := _pick(info, stem)) and u not in urls:
                urls.append(u)
        return urls, "every component and translation (--all-indexes)"
    mine = [t for t in targets if t.base == info.base]
    if mine:
        for t in mine:
            if (u := chosen(info, t)) and u not in urls:
                urls.append(u)
        return urls, f"the {len(mine)} index targets the clients stated"
    if usage is not None and usage.components:
        comps = [c for c in info.components if c in usage.components]
        use_archs = sorted(usage.archs - {"all"}) or archs
        for stem in _stems(info, comps, use_archs, ["en"] if usage.translations else []):
            if (u := _pick(info, stem)) and u not in urls:
                urls.append(u)
        return urls, f"components {' '.join(comps)} as the clients used them"
    for stem in _stems(info, info.components, archs, ["en"]):
        if (u := _pick(info, stem)) and u not in urls:
            urls.append(u)
    return urls, "every component: no client's use of this suite is known"


def usage_from_hints(hints: dict[str, Any]) -> dict[str, Usage]:
    """What the offline proxy saw clients ask of each suite (its hints are untrusted input: checked here)."""
    out: dict[str, Usage] = {}
    seen = hints.get("indexes_used")
    for base, u in (seen.items() if isinstance(seen, dict) else []):
        if isinstance(base, str) and isinstance(u, dict):
            out[base] = Usage(frozenset(map(str, u.get("components", []))),
                              frozenset(map(str, u.get("archs", []))), bool(u.get("translations")))
    return out
