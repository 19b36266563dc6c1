"""A loopback HTTP server inside mitmproxy's event loop that streams cached bodies.

mitmproxy sends a response set by an addon in one piece from memory, so a large
hit is instead *routed* here: the addon registers a job (an open fd, an offset,
a length and the headers) under a random token and points the flow at
``http://127.0.0.1:<port>/<token>`` with response streaming on.  Only mitmproxy
talks to this server and it only ever asks for tokens, which is why a few dozen
lines of asyncio are enough and no general web server is pulled in.  Static
bodies go out with ``sendfile``; a body still being downloaded is *followed*:
read as it grows and ended cleanly only when its writer committed it, so a
failed download is a broken transfer for every reader, never a short 200.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol

from pkgcache_suite.transfer.relay import Relay

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TOKEN_TTL = 120.0
PATH_PREFIX = "/.pkgcache/"


class Progress(Protocol):
    """What a follower needs to know about the download it follows."""

    relay: Relay | None  # the rest of the body, when the leader could not write it to disk

    def state(self) -> str:
        """'running', 'done' or 'failed'."""
        ...

    async def wait(self) -> None:
        """Return when more data may be there (or after a short while)."""
        ...


@dataclass
class Job:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    fd: int
    offset: int
    length: int | None  # bytes to send; None = until the followed download ends
    progress: Progress | None = None  # set for a download in progress
    created: float = field(default_factory=time.monotonic)
    on_done: object = None  # callable(bytes_sent: int, ok: bool) or None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class FileServer:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.server: asyncio.Server | None = None
        self.port = 0
        self._last_sweep = time.monotonic()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=65536)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for job in self.jobs.values():
            job.close()
        self.jobs.clear()

    def register(self, job: Job) -> str:
        now = time.monotonic()
        if now - self._last_sweep > 10:
            self._last_sweep = now
            for tok in [t for t, j in self.jobs.items() if now - j.created > TOKEN_TTL]:
                self.jobs.pop(tok).close()
        token = secrets.token_urlsafe(18)
        self.jobs[token] = job
        return token

    def cancel(self, token: str) -> None:
        job = self.jobs.pop(token, None)
        if job:
            job.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = line.split(" ")
                token = parts[1][len(PATH_PREFIX):] if len(parts) == 3 and parts[1].startswith(PATH_PREFIX) else ""
                job = self.jobs.pop(token, None)
                if job is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 20\r\n\r\nunknown cache token\n")
                    await writer.drain()
                    continue
                ok = await self._serve(job, writer)
                if not ok:
                    writer.transport.abort()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except Exception:  # never let one bad transfer take the loop down
            log.exception("pkgcache file server: transfer failed")
            writer.transport.abort()
            return
        finally:
            if not writer.is_closing():
                writer.close()

    async def _serve(self, job: Job, writer: asyncio.StreamWriter) -> bool:
        sent = 0
        ok = False
        try:
            chunked = job.length is None
            lines = [f"HTTP/1.1 {job.status} {job.reason}"]
            lines += [f"{k}: {v}" for k, v in job.headers]
            lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {job.length}")
            lines.append("Date: " + _date())
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if job.progress is None:
                assert job.length is not None
                if job.length:
                    await writer.drain()
                    loop = asyncio.get_running_loop()
                    with os.fdopen(os.dup(job.fd), "rb") as f:
                        sent = await loop.sendfile(writer.transport, f, job.offset, job.length)
                ok = sent == job.length
            else:
                sent, ok = await self._follow(job, writer, chunked)
            await writer.drain()
            return ok
        finally:
            job.close()
            if callable(job.on_done):
                job.on_done(sent, ok)

    async def _follow(self, job: Job, writer: asyncio.StreamWriter, chunked: bool) -> tuple[int, bool]:
        progress = job.progress
        assert progress is not None
        pos = job.offset
        end = None if job.length is None else job.offset + job.length
        sent = 0
        me = id(job)
        try:
            while end is None or pos < end:
                want = CHUNK if end is None else min(CHUNK, end - pos)
                relay = progress.relay
                if relay is not None:
                    relay.join(me, pos)
                    data = relay.read(me, pos, want) if pos >= relay.base else os.pread(job.fd, want, pos)
                    if data is None:
                        log.warning("pkgcache: a follower fell too far behind a download that could not be "
                                    "cached; cutting it (the client retries)")
                        return sent, False
                else:
                    data = os.pread(job.fd, want, pos)
                if data:
                    pos += len(data)
                    sent += len(data)
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                    await writer.drain()
                    continue
                if relay is not None and pos < relay.base:
                    return sent, False  # the file ends before the relay starts: it cannot be whole
                if relay is not None:
                    if relay.broken:
                        return sent, False
                    if relay.finished:
                        if end is not None and pos < end:
                            return sent, False
                        break
                    await progress.wait()
                    continue
                if not await self._wait_for_more(job, pos, end):
                    if progress.state() != "done" or (end is not None and pos < end):
                        return sent, False
                    break
        finally:
            if progress.relay is not None:
                progress.relay.leave(me)
        if chunked:
            writer.write(b"0\r\n\r\n")
        return sent, True

    async def _wait_for_more(self, job: Job, pos: int, end: int | None) -> bool:
        """Wait for the file to grow; False when it never will (the download ended or failed)."""
        assert job.progress is not None
        while True:
            state = job.progress.state()
            if job.progress.relay is not None:
                return True  # the rest comes from the relay
            if state == "failed":
                return False
            if os.pread(job.fd, 1, pos):
                return True
            if state == "done":
                return False  # the writer is finished: whatever is in the file is all there is
            await job.progress.wait()


def _date() -> str:
    import email.utils

    return email.utils.formatdate(usegmt=True)
