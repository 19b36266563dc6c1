"""RPM repository metadata: repomd.xml vouches for the repodata files, primary.xml for the packages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from xml.parsers import expat

from pkgcache_suite.indexes.compression import IndexTooLarge

NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}
_PACKAGE, _LOCATION, _SIZE, _CHECKSUM = (f"{NS['common']}}}{n}" for n in ("package", "location", "size", "checksum"))
MAX_REPOMD = 16 << 20
MAX_TOKEN = 4 << 20


@dataclass(frozen=True)
class Listed:
    href: str  # relative to the repository root
    size: int | None
    sha256: str | None  # None where the checksum is not SHA-256
    type: str = ""  # for repomd entries: primary, filelists, ...


def _sha256(el: ET.Element | None) -> str | None:
    if el is None or el.get("type") != "sha256" or not el.text:
        return None
    return el.text.strip().lower() or None


def repomd_entries(stream: IO[bytes]) -> Iterator[Listed]:
    """The repodata files a repomd.xml lists; ET.ParseError when it is not XML, IndexTooLarge past bounds."""
    data = stream.read(MAX_REPOMD + 1)
    if len(data) > MAX_REPOMD:
        raise IndexTooLarge(f"a repomd.xml of more than {MAX_REPOMD >> 20} MiB")
    for item in ET.fromstring(data).findall("repo:data", NS):
        loc = item.find("repo:location", NS)
        if loc is None:
            continue
        size = item.find("repo:size", NS)
        yield Listed(loc.get("href", ""), int(size.text) if size is not None and size.text else None,
                     _sha256(item.find("repo:checksum", NS)), item.get("type", ""))


class _Primary:
    """expat handlers that keep only each package's location, size and SHA-256: whatever else the file
    holds (descriptions, file lists, a text node of a gigabyte) passes through without being kept."""

    def __init__(self) -> None:
        self.found: list[Listed] = []
        self.href: str | None = None
        self.size: str | None = None
        self.sha: str | None = None
        self.checksum: list[str] | None = None  # text of the package's checksum element, while inside it
        self.checksum_type: str | None = None
        self.kept = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == _PACKAGE:
            self.href = self.size = self.sha = None
        elif name == _LOCATION:
            self.href = attrs.get("href")
        elif name == _SIZE:
            self.size = attrs.get("package")
        elif name == _CHECKSUM:
            self.checksum, self.checksum_type, self.kept = [], attrs.get("type"), 0

    def text(self, data: str) -> None:
        if self.checksum is not None:
            self.kept += len(data)
            if self.kept > 1024:
                raise IndexTooLarge("a package checksum longer than 1 KiB")
            self.checksum.append(data)

    def end(self, name: str) -> None:
        if name == _CHECKSUM and self.checksum is not None:
            digest = "".join(self.checksum).strip().lower()
            self.sha = digest or None if self.checksum_type == "sha256" else None
            self.checksum = None
        elif name == _PACKAGE and self.href is not None and self.size is not None and self.size.isdigit():
            self.found.append(Listed(self.href, int(self.size), self.sha))


def primary_entries(stream: IO[bytes]) -> Iterator[Listed]:
    """The packages a primary.xml lists, parsed as a stream with bounded memory (a full primary is large,
    and a hostile one may hold one endless tag): ValueError when it is not XML or past bounds."""
    handlers = _Primary()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = handlers.start
    parser.EndElementHandler = handlers.end
    parser.CharacterDataHandler = handlers.text
    fed = 0
    try:
        while chunk := stream.read(1 << 16):
            parser.Parse(chunk, False)
            fed += len(chunk)
            if fed - parser.CurrentByteIndex > MAX_TOKEN:  # expat holds an unfinished tag whole
                raise IndexTooLarge(f"a tag longer than {MAX_TOKEN >> 20} MiB")
            yield from handlers.found
            handlers.found.clear()
        parser.Parse(b"", True)
    except expat.ExpatError as e:
        raise ValueError(f"not a primary.xml: {e}") from None
    yield from handlers.found
