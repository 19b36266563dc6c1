"""A PyPI simple page (PEP 503 HTML or PEP 691 JSON): the files it lists, with the SHA-256 it gives for each
(the URL's `#sha256=` fragment, or the JSON `hashes`), and whether a file is yanked (PEP 592)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urldefrag

MAX_PAGE = 64 << 20


@dataclass(frozen=True)
class File:
    url: str  # absolute, without its fragment
    sha256: str | None
    yanked: bool


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            a = dict(attrs)
            if a.get("href"):
                self.links.append((a["href"] or "", "data-yanked" in a))


def _sha256(fragment: str) -> str | None:
    name, _, value = fragment.partition("=")
    value = value.lower()
    return value if name == "sha256" and len(value) == 64 and all(c in "0123456789abcdef" for c in value) else None


def files(data: bytes, page_url: str) -> Iterator[File]:
    """Every file a simple page lists; ValueError when it is neither form, or too large."""
    if len(data) > MAX_PAGE:
        raise ValueError("a simple page larger than any index's")
    text = data.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        doc = json.loads(text)
        for f in doc.get("files", []) if isinstance(doc, dict) else []:
            if isinstance(f, dict) and isinstance(f.get("url"), str):
                hashes = f.get("hashes")
                url, frag = urldefrag(urljoin(page_url, f["url"]))
                sha = hashes.get("sha256") if isinstance(hashes, dict) and isinstance(hashes.get("sha256"), str) \
                    else None
                yield File(url, _sha256(f"sha256={sha}") if sha else _sha256(frag), bool(f.get("yanked")))
        return
    parser = _Links()
    parser.feed(text)
    for href, yanked in parser.links:
        url, frag = urldefrag(urljoin(page_url, href))
        yield File(url, _sha256(frag), yanked)
