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

from dataclasses import dataclass

QUICK = 10.0  # seconds a download may be expected to take and still be handed to nginx
UNKNOWN_SIZE = 8 << 20  # what a file of unknown size is assumed to weigh (a large package)
MEASURED_MIN = 1 << 20  # downloads smaller than this say more about latency than about the link

# request headers that ask for something other than the whole identity body
PARTIAL = ("range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since")


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


def may_redirect(f: FrontFacts) -> str | None:
    """Whether nginx may answer this request from the published tree or fetch it; None: yes, else why not."""
    if not f.enabled or f.front_path is None:
        return "not behind the tier's nginx"
    if f.front_path != f.key:
        return "nginx and the worker file this URL differently"
    if not f.publishable:
        return "not a published kind of file"
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
