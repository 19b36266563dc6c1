"""nginx's line for each miss it fetched for a worker, and what that line says happened: pure.

nginx writes the line when the request ends, after a whole body has been
renamed into the landing folder (``proxy_store`` stores only a complete 200
response).  So the line and the presence of the landed file tell the worker
everything: stored whole, broken on the way, answered with another status, or
never answered at all.  Fields are tab-separated in the order of the
``pkgcache_fetch`` log format (tier/config.py); nginx writes ``-`` for a value
it does not have and escapes unusual bytes as ``\\xHH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

FIELDS = ("token", "status", "upstream_status", "upstream_bytes", "header_time", "content-length",
          "transfer-encoding", "content-type", "content-encoding", "vary", "last-modified", "etag", "sent",
          "upstream_time")
HEADERS = ("content-length", "transfer-encoding", "content-type", "content-encoding", "vary", "last-modified",
           "etag")
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")
_TOKEN = re.compile(r"[0-9a-f]{32}")


class Outcome(str, Enum):
    LANDED = "landed"  # a whole 200 body is in the landing folder: admit it (or not)
    BROKEN = "broken"  # a 200 that did not arrive whole (reset, stall, short): nothing stored
    MISSING = "missing"  # upstream said 404
    ANSWERED = "answered"  # another status, passed on unstored
    UNREACHABLE = "unreachable"  # upstream never answered (refused, timed out before the headers)


@dataclass(frozen=True)
class FetchRecord:
    token: str
    status: int  # what the client was answered
    upstream_status: int | None
    upstream_bytes: int
    answered: bool  # upstream sent response headers
    headers: dict[str, str]  # upstream's response headers nginx logged, lower-case, present ones only
    sent: int  # body bytes sent to the client
    upstream_time: float | None = None  # seconds from connecting upstream to its last byte


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def _last(value: str) -> str:
    """The last upstream's value: nginx lists one per upstream asked ("a, b" for a retry, "a : b" after an
    internal redirect, as from the worker's answer to the origin)."""
    return value.split(",")[-1].split(":")[-1].strip()


def _number(value: str) -> int | None:
    last = _last(value)
    return int(last) if last.isdigit() else None


def _seconds(value: str) -> float | None:
    try:
        return float(_last(value))
    except ValueError:
        return None


def parse_line(line: str) -> FetchRecord | None:
    """One logged line, or None when it is not one of ours (another format, a torn line)."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != len(FIELDS) or not _TOKEN.fullmatch(parts[0]) or not parts[1].isdigit():
        return None
    f = dict(zip(FIELDS, parts))
    headers = {name: _unescape(f[name]) for name in HEADERS if f[name] != "-"}
    return FetchRecord(token=f["token"], status=int(f["status"]), upstream_status=_number(f["upstream_status"]),
                       upstream_bytes=_number(f["upstream_bytes"]) or 0,
                       answered=_seconds(f["header_time"]) is not None, headers=headers,
                       sent=_number(f["sent"]) or 0, upstream_time=_seconds(f["upstream_time"]))


def outcome(rec: FetchRecord, landed: bool) -> Outcome:
    if not rec.answered or rec.upstream_status is None:
        return Outcome.UNREACHABLE
    if rec.upstream_status == 200:
        return Outcome.LANDED if landed else Outcome.BROKEN
    if rec.upstream_status == 404:
        return Outcome.MISSING
    return Outcome.ANSWERED
