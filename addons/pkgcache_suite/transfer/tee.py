"""The miss path's stream callable: every chunk goes to the client and to the partial file."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pkgcache_suite.policy import httpsem
from pkgcache_suite.policy.admission import looks_like_html
from pkgcache_suite.storage import Writer
from pkgcache_suite.transfer.flight import Flight, FlightState
from pkgcache_suite.transfer.relay import Relay

log = logging.getLogger("pkgcache")


class Tee:
    """The miss path's stream callable: every chunk goes to the client and to the partial file.

    The body is committed the moment its last byte arrives, before that byte is
    handed on, so a client that has the whole body can count on the next request
    being a hit.  With a client Range on a miss we still download (and store)
    the whole body and hand the client only its slice.
    """

    def __init__(self, writer: Writer, flight: Flight, rng: httpsem.ByteRange | None,
                 expected: int | None, on_complete: Callable[[], None], sniff_html: bool = False,
                 on_progress: Callable[[], None] | None = None) -> None:
        self.writer, self.flight, self.rng = writer, flight, rng
        self.expected, self.on_complete = expected, on_complete
        self.sniff_html = sniff_html  # a package file must not be an HTML page (a captive portal's)
        self.on_progress = on_progress
        self.pos = 0
        self.dead = False
        self.relay: Relay | None = None
        self.html = False  # the body turned out to be an HTML page: followers must not be relayed it

    def __call__(self, chunk: bytes) -> bytes:
        if self.on_progress is not None:
            self.on_progress()
        if not chunk:
            if self.expected is None and not self.dead:
                self.on_complete()
            return b""
        start = self.pos
        self.pos += len(chunk)
        if self.sniff_html and start == 0 and looks_like_html(chunk):
            self.html = True
            self.writer.fail("the body is an HTML page, not a package file (a captive portal?)")
        if self.relay is not None:
            self.relay.append(chunk)
            self.flight.notify()
        elif not self.dead:
            self.writer.write(chunk)
            if self.writer.failed is not None:
                self._stop_writing()
            elif self.pos == self.expected:
                self.on_complete()
        if self.rng is None:
            return chunk
        lo = max(start, self.rng.start)
        hi = min(self.pos, self.rng.end + 1)
        return chunk[lo - start:hi - start] if hi > lo else b""

    def _stop_writing(self) -> None:
        """The partial file cannot be written: followers get the rest of the stream from a relay."""
        self.dead = True
        log.error("pkgcache: %s: %s; continuing without caching", self.writer.url, self.writer.failed)
        self.writer.abort()  # free the space now: the disk may be full
        if self.flight.followers and not self.html:
            self.relay = Relay(self.writer.written, self.writer.unwritten, self.flight.followers)
            self.writer.unwritten = []
            self.flight.relay = self.relay
            self.flight.notify()
        else:
            self.flight.set_state(FlightState.FAILED)
