"""RPM repository metadata: repomd.xml vouches for the repodata files, primary.xml for the packages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


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
    """The repodata files a repomd.xml lists; ET.ParseError when it is not XML."""
    for data in ET.parse(stream).getroot().findall("repo:data", NS):
        loc = data.find("repo:location", NS)
        if loc is None:
            continue
        size = data.find("repo:size", NS)
        yield Listed(loc.get("href", ""), int(size.text) if size is not None and size.text else None,
                     _sha256(data.find("repo:checksum", NS)), data.get("type", ""))


def primary_entries(stream: IO[bytes]) -> Iterator[Listed]:
    """The packages a primary.xml lists, parsed incrementally (a full primary is large)."""
    for _, el in ET.iterparse(stream):
        if el.tag.endswith("}package"):
            loc = el.find("common:location", NS)
            size = el.find("common:size", NS)
            if loc is not None and size is not None:
                yield Listed(loc.get("href", ""), int(size.get("package", "0")), _sha256(el.find("common:checksum", NS)))
            el.clear()
