"""Single flight: how followers of a download learn about its progress.

A download is led by whoever holds the key's flock (see store.py).  Followers in
the same process watch the leader's :class:`Flight`; followers in another
process cannot, so :class:`RemoteProgress` infers the same facts from the lock
and the flock its writer holds on the partial file's inode.
"""

from __future__ import annotations

import asyncio
import os
from enum import Enum
from typing import Any

from pkgcache_suite.transfer.relay import Relay
from pkgcache_suite.storage import CacheStore, StoreError, fd_locked_by_other

WAIT = 0.25
REMOTE_POLL = 0.02


class FlightState(str, Enum):
    """Where a download is; a str, so followers compare it with plain names too."""

    PENDING = "pending"  # the leader waits for upstream's headers
    RUNNING = "running"  # the body is being written to the partial file
    DONE = "done"  # committed
    FAILED = "failed"  # broken or not storable after it started: followers' transfers break
    UNCACHEABLE = "uncacheable"  # upstream's answer is not stored: followers go upstream themselves


class Flight:
    """An in-process download; the leader's hooks move it through pending → running → done|failed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._state = FlightState.PENDING
        self.header: dict[str, Any] | None = None
        self._event = asyncio.Event()
        self._waiters = 0
        self.followers = 0  # followers being served from this download's partial file
        self.relay: Relay | None = None  # set when the partial file could not be written
        self.by_front = False  # the tier's nginx fetches it: no partial file to follow, followers wait for the end

    def state(self) -> FlightState:
        return self._state

    def set_state(self, state: FlightState, header: dict[str, Any] | None = None) -> None:
        self._state = state
        if header is not None:
            self.header = header
        self.notify()

    def notify(self) -> None:
        if self._waiters:
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self) -> None:
        ev = self._event
        self._waiters += 1
        try:
            await asyncio.wait_for(ev.wait(), WAIT)
        except (TimeoutError, asyncio.TimeoutError):
            pass
        finally:
            self._waiters -= 1


class RemoteProgress:
    """Progress of a download led by another process sharing the cache root."""

    relay: Relay | None = None  # another process's stream cannot be relayed

    def __init__(self, store: CacheStore, key: str, fd: int) -> None:
        self.store, self.key, self.fd = store, key, fd

    def state(self) -> FlightState:
        if fd_locked_by_other(self.fd):
            return FlightState.RUNNING  # its writer still holds the flock of the very inode we read
        # The writer let go.  It succeeded iff the file we are reading became the body.
        try:
            final = os.stat(self.store.body_path(self.key), follow_symlinks=False)
            mine = os.fstat(self.fd)
        except (OSError, StoreError):
            return FlightState.FAILED
        same = (final.st_ino, final.st_dev) == (mine.st_ino, mine.st_dev)
        return FlightState.DONE if same else FlightState.FAILED

    async def wait(self) -> None:
        await asyncio.sleep(REMOTE_POLL)
