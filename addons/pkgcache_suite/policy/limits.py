"""Bounds on what a client may send, checked before anything parses it.

Every later parser (Range, If-Range, conditional dates, ETag lists, the path
mapping) then works on input of known, small size: a header with thousands of
digits is a 400 here instead of an exception deep in a hook.  Pure: no I/O, no
mitmproxy types, so the limits are tested table-driven.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_PATH = 8192  # bytes of request target; nginx's and apt-cacher-ng's limits are of this order
MAX_HEADER_VALUE = 8192
MAX_HEADERS_TOTAL = 65536
MAX_HEADER_COUNT = 200
MAX_NUMBER_DIGITS = 64  # far beyond any file size, far below what makes number parsing costly
# headers the cache parses, with the longest value it accepts
PARSED = {"range": 256, "if-range": 256, "if-modified-since": 64, "if-unmodified-since": 64,
          "if-none-match": 4096, "if-match": 4096}
_DIGITS = re.compile(r"\d+")
# a "." or ".." segment, plain or percent-encoded: servers resolve them differently (nginx refuses one that
# climbs above the root, others serve the parent), so no setup forwards or looks one up
_DOT_SEGMENT = re.compile(r"(?:^|/|%2f)(?:\.|%2e){1,2}(?:/|%2f|$)", re.IGNORECASE)
BODILESS = ("GET", "HEAD")  # methods whose request body means nothing to a cache, and only serves smuggling
BODY_ON_GET = "a GET or HEAD with a request body (Transfer-Encoding)"  # the tier's HAProxy says the same


@dataclass(frozen=True)
class Refusal:
    status: int  # 400, 414 or 431
    reason: str


def check_request(path: str, headers: Iterable[tuple[str, str]], method: str = "GET") -> Refusal | None:
    """None when the request is within bounds, else the status and one-line reason to answer with."""
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH:
        return Refusal(414, f"request target longer than {MAX_PATH} bytes")
    target = path.split("?", 1)[0]
    if _DOT_SEGMENT.search(target) or "%00" in target:
        return Refusal(400, "refusing unsafe URL: a dot segment or an encoded NUL in the path")
    total = count = 0
    for name, value in headers:
        count += 1
        total += len(name) + len(value)
        lname = name.lower()
        if lname == "transfer-encoding" and method.upper() in BODILESS:
            return Refusal(400, BODY_ON_GET)
        if any(c in value for c in "\x00\r\n"):
            return Refusal(400, f"header {lname} holds a control character")
        if len(value) > MAX_HEADER_VALUE:
            return Refusal(431, f"header {lname} longer than {MAX_HEADER_VALUE} bytes")
        limit = PARSED.get(lname)
        if limit is not None:
            if len(value) > limit:
                return Refusal(400, f"{lname} value longer than {limit} characters")
            if lname == "range" and any(len(d) > MAX_NUMBER_DIGITS for d in _DIGITS.findall(value)):
                return Refusal(400, f"range offset with more than {MAX_NUMBER_DIGITS} digits")
    if count > MAX_HEADER_COUNT:
        return Refusal(431, f"more than {MAX_HEADER_COUNT} header fields")
    if total > MAX_HEADERS_TOTAL:
        return Refusal(431, f"header fields larger than {MAX_HEADERS_TOTAL} bytes in all")
    return None
