"""What `pkgcache fetch` brings for a Go module file an offline client missed: the version's other files
(`go mod download` wants its .info, .mod and .zip) and, from its go.mod, the modules it requires, so a
project whose go.mod lists its modules needs one trip.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_MOD = 1 << 20  # a go.mod is a few KiB
# BASE/ESCAPED-MODULE/@v/VERSION.EXT, VERSION a canonical semantic version (a released one, never a query)
VERSION_FILE = re.compile(r"^(?P<stem>.+/@v/)(?P<version>v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?"
                          r"(?:\+incompatible)?)\.(?P<ext>info|mod|zip)$")
_MODULE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.M)
_REQUIRE = re.compile(r"^\s*(?:require\s+)?\"?([A-Za-z0-9][^\s\"]*)\"?\s+(v[0-9][^\s]*)", re.M)


def escape(path: str) -> str:
    """A module path as the GOPROXY protocol writes it in URLs (an upper-case letter is ! and the letter)."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def is_version_file(url: str) -> bool:
    return VERSION_FILE.match(url) is not None


def learn(url: str, path: Path) -> list[str]:
    """A fetched version file: the URLs of the version's other files and, for a .mod, of what it requires."""
    m = VERSION_FILE.match(url)
    if m is None:
        return []
    stem, version = m.group("stem"), m.group("version")
    more = [f"{stem}{version}.{ext}" for ext in ("mod", "info", "zip") if ext != m.group("ext")]
    if m.group("ext") == "mod":
        with open(path, "rb") as f:
            more += requires(url, f.read(MAX_MOD).decode("utf-8", "replace"))
    return more


def requires(url: str, gomod: str) -> list[str]:
    """The .mod URLs of the modules a go.mod requires, beside the module the URL names."""
    own = _MODULE.search(gomod)
    marker = f"/{escape(own.group(1))}/@v/" if own else None
    if marker is None or marker not in url:
        return []
    base = url[:url.index(marker)]
    out = []
    for block in _require_blocks(gomod):
        for mod, version in _REQUIRE.findall(block):
            if VERSION_FILE.match(f"{base}/@v/{version}.mod"):
                out.append(f"{base}/{escape(mod)}/@v/{version}.mod")
    return out


def _require_blocks(gomod: str) -> list[str]:
    """The text of every require directive: single lines and parenthesised blocks (comments dropped)."""
    text = re.sub(r"//[^\n]*", "", gomod)
    blocks = re.findall(r"^\s*require\s*\((.*?)\)", text, re.M | re.S)
    blocks += re.findall(r"^\s*(require\s+[^(\s][^\n]*)$", text, re.M)
    return blocks
