"""May a response be stored, and what must its body be to be committed?  Pure decisions.

A body is committed only when the cache can tell it is whole and right:

- A body delimited by the connection closing (HTTP/1 without Content-Length or
  chunked encoding, RFC 9112 section 6.3 rule 8) cannot be told from a
  truncated one.  It is stored only when its size is known from elsewhere: a
  cached index lists the file, or the file's name is its SHA-256 (by-hash).
- A package file that is an HTML page is a captive portal's or an error page,
  whatever the status says.
- Where a cached index lists a package file, the body must have the size and
  SHA-256 the index gives (Debian Packages, RPM primary.xml).
- A response that varies by something other than what the cache keys on
  (Accept, by variant; the encoding, always identity) is one client's, not stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pkgcache_suite.policy.variants import unhandled_vary

MAX_LENGTH_DIGITS = 18
HTML_PAGE = "upstream answered an HTML page for a package file (a captive portal?)"


@dataclass(frozen=True)
class Admission:
    store: bool
    why: str = ""  # why the body is passed on unstored
    length: int | None = None  # the size the body must have to be committed (None: as framed)
    sha256: str | None = None  # the digest it must have


def parse_length(value: str | None) -> int | None:
    """Content-Length as a number; ValueError when it is not one (RFC 9110 section 8.6)."""
    if value is None:
        return None
    v = value.strip()
    if not v.isdigit() or len(v) > MAX_LENGTH_DIGITS:
        raise ValueError(f"bad Content-Length {value[:40]!r}")
    return int(v)


def close_delimited(headers: Mapping[str, str], http_version: str) -> bool:
    """HTTP/1 bodies without a length or chunked framing end when the connection closes."""
    if not http_version.upper().startswith("HTTP/1"):
        return False  # HTTP/2 and 3 frame every body
    te = headers.get("transfer-encoding", "").lower()
    return "content-length" not in headers and "chunked" not in te


def admit(kind: str, headers: Mapping[str, str], http_version: str, by_hash: str | None,
          ref: tuple[int | None, str | None] | None) -> Admission:
    """Decide for a 200 response of a cacheable class.

    headers: response headers with lower-case names; by_hash: the SHA-256 the
    URL names, if any; ref: (size, SHA-256 or None) a cached index lists for it.
    """
    package = kind == "immutable"
    varies = unhandled_vary(headers.get("vary"))
    if varies:
        return Admission(False, f"the response varies by {', '.join(varies)} (RFC 9111 section 4.1): one client's "
                                "copy is not another's")
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if package and ctype in ("text/html", "application/xhtml+xml"):
        return Admission(False, HTML_PAGE)
    try:
        length = parse_length(headers.get("content-length"))
    except ValueError as e:
        return Admission(False, str(e))
    ref = ref if package else None
    if ref is not None and ref[0] is None:
        ref = None if ref[1] is None else ref  # an index that lists a digest but no size (cargo)
    if ref is not None and ref[0] is not None and length is not None and length != ref[0]:
        return Admission(False, f"upstream sends {length} bytes, the cached index lists {ref[0]}")
    if close_delimited(headers, http_version):
        if (ref is None or ref[0] is None) and by_hash is None:
            return Admission(False, "the body ends when the connection closes, so a truncated one cannot be "
                                    "told from a whole one, and no cached index confirms its size")
    if length is None and ref is not None:
        length = ref[0]
    sha = by_hash or (ref[1] if ref is not None else None)
    return Admission(True, length=length, sha256=sha.lower() if sha else None)


def looks_like_html(chunk: bytes) -> bool:
    """An HTML document where a package file was expected: no package format starts with markup."""
    head = chunk[:512].lstrip().lower()
    return head.startswith(b"<") and (head.startswith(b"<!doctype html") or b"<html" in head)
