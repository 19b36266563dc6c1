"""When a worker behind the tier's nginx may hand a request's bytes to nginx: pure decisions.

A miss nginx fetches is stored by nginx exactly as upstream sent it and
admitted by the worker afterwards, so only a plain, whole-body GET of a
package file whose published path nginx and the worker agree on goes that
way.  Clients that ask for the file while nginx fetches it get nothing until
it is stored, so a download expected to be slow (a large file over a link
measured slow) is left to the worker, which streams it to every client as it
arrives.  Anything else (a Range or a conditional on a miss, a remapped
repository, an upstream proxy, a name that resolves to the proxy host's own
address) stays on the worker's own path, which handles it as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

QUICK = 10.0  # seconds a download may be expected to take and still be handed to nginx
UNKNOWN_SIZE = 8 << 20  # what a file of unknown size is assumed to weigh (a large package)
MEASURED_MIN = 1 << 20  # downloads smaller than this say more about latency than about the link

# request headers that ask for something other than the whole identity body
PARTIAL = ("range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since")
# the forms of them nginx reads exactly as the worker does (policy/httpsem.py), with if_modified_since before
_RANGE = re.compile(r"bytes=(?:(\d{1,18})-(\d{0,18})|-0*[1-9]\d{0,17})")
_STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e]{1,200}"')
_HTTP_DATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3]\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                        r"(19|20)\d\d [0-2]\d:[0-5]\d:[0-5]\d GMT")


@dataclass(frozen=True)
class FrontFacts:
    enabled: bool  # the worker runs behind the tier's nginx (pkgcache_front_fetch)
    front_path: str | None  # what nginx says the request's published path is (None: not through nginx)
    key: str  # the worker's cache key for the request
    publishable: bool  # a key the published tree holds (a package file, no query)
    method: str
    scheme: str
    headers: frozenset[str]  # the request's header names, lower-case
    remapped: bool = False  # a configured repository: the worker chose the mirror and the path
    via_proxy: bool = False  # upstream is reached through another proxy
    read_alike: bool = True  # nginx would answer the request's Range and conditionals as the worker does


def nginx_reads_alike(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether nginx, serving a published file, answers these request headers exactly as the worker's own
    answer would: one well-formed byte range (first <= last), a strong ETag or an HTTP date in If-Range, an
    HTTP date in If-Modified-Since, and no If-None-Match, If-Match or If-Unmodified-Since (nginx compares
    and refuses those by rules of its own).  Anything else the worker answers itself."""
    seen: dict[str, str] = {}
    for name, value in headers:
        n = name.lower()
        if n not in PARTIAL:
            continue
        if n in seen or n in ("if-none-match", "if-match", "if-unmodified-since"):
            return False
        seen[n] = value
    rng = seen.get("range")
    if rng is not None:
        m = _RANGE.fullmatch(rng)
        if m is None or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            return False
    if_range = seen.get("if-range")
    if if_range is not None and not (_STRONG_ETAG.fullmatch(if_range) or _HTTP_DATE.fullmatch(if_range)):
        return False
    ims = seen.get("if-modified-since")
    return ims is None or _HTTP_DATE.fullmatch(ims) is not None


def may_redirect(f: FrontFacts) -> str | None:
    """Whether nginx may answer this request from the published tree or fetch it; None: yes, else why not."""
    if not f.enabled or f.front_path is None:
        return "not behind the tier's nginx"
    if f.front_path != f.key:
        return "nginx and the worker file this URL differently"
    if not f.publishable:
        return "not a published kind of file"
    if not f.read_alike:
        return "nginx would read its Range or conditionals differently"
    return None


def may_fetch(f: FrontFacts) -> str | None:
    """Whether nginx may fetch and store this miss; None: yes, else why the worker fetches it itself."""
    why = may_redirect(f)
    if why is not None:
        return why
    if f.method != "GET" or f.scheme != "http":
        return "only plain http GETs are fetched by nginx"
    if any(h in f.headers for h in PARTIAL):
        return "a partial or conditional request: the worker stores the whole file and answers the part"
    if f.remapped:
        return "a remapped repository: the worker chooses among its mirrors"
    if f.via_proxy:
        return "upstream is reached through a proxy"
    return None


def quick_enough(expected_size: int | None, speed: float | None) -> bool:
    """Whether a download is expected to end soon enough that clients joining it may wait for its end.

    expected_size: what a cached index says the file weighs; speed: bytes per second recently measured from
    its origin (None: not yet measured, assumed fast, as a LAN mirror or a CI farm's uplink is).
    """
    if speed is None:
        return True
    if speed <= 0:
        return False
    return (expected_size if expected_size is not None else UNKNOWN_SIZE) / speed <= QUICK


def next_speed(previous: float | None, nbytes: int, seconds: float | None, weight: float = 0.5) -> float | None:
    """An origin's measured speed after one more download (a moving average); downloads too small or too
    quick to tell leave it as it was."""
    if nbytes < MEASURED_MIN or not seconds or seconds <= 0:
        return previous
    now = nbytes / seconds
    return now if previous is None else weight * now + (1 - weight) * previous
