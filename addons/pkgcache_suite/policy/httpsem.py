"""HTTP semantics for answering from the cache: Range, conditionals, and the headers we send.

Kept free of mitmproxy types so the rules can be tested directly and reused by
the loopback file server.
"""

from __future__ import annotations

from pkgcache_suite.errors import PkgcacheError

import email.utils
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pkgcache_suite.policy import oci


_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(PkgcacheError):
    """The Range names no byte of the body: answer 416."""


def parse_range(header: str | None, size: int | None) -> ByteRange | None:
    """One byte range, or None to send the whole body.

    Malformed and multi-range headers are ignored (RFC 9110 allows a server to
    ignore Range), so a confused client still gets a correct full answer.
    With an unknown size (a download still in progress) suffix ranges are ignored.
    """
    if not header:
        return None
    m = _RANGE_RE.match(header)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        if size is None:
            return None
        n = int(last)
        if n == 0:
            raise Unsatisfiable()
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None
    if size is not None:
        if start >= size:
            raise Unsatisfiable()
        end = size - 1 if end is None or end >= size else end
    elif end is None:
        end = 2**63
    return ByteRange(start, end)


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _parse_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return dt.timestamp() if dt else None


class Stored(Protocol):
    """What these rules read of a stored response: its validators and type (a storage entry has them)."""

    @property
    def content_type(self) -> str: ...

    @property
    def etag(self) -> str | None: ...

    @property
    def last_modified(self) -> str | None: ...

    @property
    def fetched(self) -> float: ...

    @property
    def url(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def _etag_list(value: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in value.split(",") if t.strip()]


def last_modified(entry: Stored) -> str:
    return entry.last_modified or http_date(entry.fetched)


def not_modified(entry: Stored, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110 13.2.2 order: If-None-Match decides when present, else If-Modified-Since."""
    if if_none_match:
        if if_none_match.strip() == "*":
            return True
        if not entry.etag:
            return False
        return entry.etag.removeprefix("W/") in _etag_list(if_none_match)
    since = _parse_date(if_modified_since)
    if since is None:
        return False
    mine = _parse_date(last_modified(entry))
    return mine is not None and mine <= since


def if_range_ok(entry: Stored, if_range: str | None) -> bool:
    """A Range applies only if If-Range (when sent) still names this body."""
    if not if_range:
        return True
    v = if_range.strip()
    if v.startswith('"') or v.startswith("W/"):
        return bool(entry.etag) and v == entry.etag and not v.startswith("W/")
    return v == last_modified(entry)


def entry_headers(entry: Stored, x_cache: str) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", entry.content_type),
        ("Last-Modified", last_modified(entry)),
        ("Accept-Ranges", "bytes"),
        ("X-Cache", x_cache),
    ]
    if entry.etag:
        headers.append(("ETag", entry.etag))
    return headers + oci.answer_headers(urlsplit(entry.url).path, entry.sha256)
