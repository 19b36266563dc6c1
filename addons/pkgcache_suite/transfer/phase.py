"""A download's phase: one value, moved only by events, through one table.

Theory of operation.  A flow that leads a download (or revalidates a cached
index) starts ASKED: its request is on its way upstream.  The response headers
decide the first step: a body the cache may store starts STREAMING (every chunk
goes to the client and to the partial file, transfer/tee.py); anything else is
PASSED on unstored, or, for a revalidation, ANSWERED from the cached copy (a 304,
or a server error served stale).  A streaming body is STORED the moment its last
byte is written and verified, before that byte is handed on.  A signed index is
HOLDING instead: its body is read whole and its signature checked before anyone
gets it; it is then STORED, or ANSWERED with the last good copy.  When the leading
client leaves mid-body, the download goes on CONTINUING without it, so the
followers and the cache still get the file.  The upstream watchdog CUTs a
download that stalls; the error that follows makes it FAILED, as does a broken
transfer or a body that fails its checks.  STORED, PASSED, ANSWERED and FAILED
are final: nothing moves a download out of them, and a client leaving a stored
download changes nothing.

The hooks feed events in (transfer/download.py); :func:`advance` refuses a step
the table does not list, so an unexpected combination is a loud bug, never a
silently stored file.
"""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    ASKED = "asked"
    STREAMING = "streaming"
    HOLDING = "holding"
    CONTINUING = "continuing"
    CUT = "cut"
    STORED = "stored"
    PASSED = "passed"
    ANSWERED = "answered"
    FAILED = "failed"


class Event(str, Enum):
    STORABLE = "storable"  # response headers admitted: store the body while it streams
    HELD = "held"  # response headers admitted for a body that is checked whole before anyone gets it
    UNSTORABLE = "unstorable"  # response headers that are passed on (a 404, a 206, refused by admission)
    CURRENT = "current"  # a revalidation's answer: the cached copy is served (304, or stale on a 5xx)
    COMPLETE = "complete"  # the last byte arrived and the body was committed
    BROKEN = "broken"  # the body cannot be stored: upstream broke, a check failed, the disk refused it
    CLIENT_LEFT = "client_left"  # the leading client went away while upstream still sends
    STALLED = "stalled"  # the watchdog cut upstream


FINAL = frozenset({Phase.STORED, Phase.PASSED, Phase.ANSWERED, Phase.FAILED})

TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.ASKED, Event.STORABLE): Phase.STREAMING,
    (Phase.ASKED, Event.HELD): Phase.HOLDING,
    (Phase.HOLDING, Event.COMPLETE): Phase.STORED,  # it verified, and was stored
    (Phase.HOLDING, Event.CURRENT): Phase.ANSWERED,  # it did not verify: the last good copy is served
    (Phase.HOLDING, Event.BROKEN): Phase.FAILED,  # it did not verify and there is no good copy, or upstream broke
    (Phase.HOLDING, Event.CLIENT_LEFT): Phase.FAILED,
    (Phase.HOLDING, Event.STALLED): Phase.CUT,
    (Phase.ASKED, Event.UNSTORABLE): Phase.PASSED,
    (Phase.ASKED, Event.CURRENT): Phase.ANSWERED,
    (Phase.ASKED, Event.BROKEN): Phase.FAILED,
    (Phase.ASKED, Event.STALLED): Phase.CUT,
    (Phase.ASKED, Event.CLIENT_LEFT): Phase.FAILED,  # nothing to go on with: no body has started
    (Phase.STREAMING, Event.COMPLETE): Phase.STORED,
    (Phase.STREAMING, Event.BROKEN): Phase.FAILED,
    (Phase.STREAMING, Event.CLIENT_LEFT): Phase.CONTINUING,
    (Phase.STREAMING, Event.STALLED): Phase.CUT,
    (Phase.CONTINUING, Event.COMPLETE): Phase.STORED,
    (Phase.CONTINUING, Event.BROKEN): Phase.FAILED,
    (Phase.CONTINUING, Event.STALLED): Phase.CONTINUING,  # the client's connection was cut: the rest goes on
    (Phase.CUT, Event.COMPLETE): Phase.STORED,  # the last byte raced the cut: it arrived whole and verified
    (Phase.CUT, Event.BROKEN): Phase.FAILED,
    (Phase.CUT, Event.CLIENT_LEFT): Phase.FAILED,
    (Phase.CUT, Event.STALLED): Phase.CUT,
    # a stored body stays stored whatever happens to its client or its connection afterwards
    (Phase.STORED, Event.CLIENT_LEFT): Phase.STORED,
    (Phase.STORED, Event.BROKEN): Phase.STORED,
    (Phase.STORED, Event.STALLED): Phase.STORED,
    (Phase.STORED, Event.COMPLETE): Phase.STORED,
}


class IllegalStep(RuntimeError):
    """An event the table has no step for in this phase: a bug in the driver, never a user's input."""


def advance(phase: Phase, event: Event) -> Phase:
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalStep(f"a download {phase.value} cannot be {event.value}") from None


CLIENT_DISCONNECTED = "client disconnected"  # mitmproxy's HTTP/1 layer, 11.x and 12.x alike


def client_left(error: str) -> bool:
    """Whose side ended a streaming response.  mitmproxy tells only in the flow's error message: by the time
    the error hook runs both connections are closed and neither has a closing time of its own (checked on
    11.0 and 12.x), and mitmproxy 12's error code never reaches the flow.  So the one message is matched
    here, and nowhere else."""
    return CLIENT_DISCONNECTED in error.lower()
