"""Misses and hits whose bytes the tier's nginx carries: the worker decides, nginx moves the bytes.

Behind ``pkgcache serve --workers``, a worker that leads the download of a
package file (it holds the key's lock, so it is the one download) answers nginx
with an ``X-Accel-Redirect`` naming a token, the upstream address it resolved
and the Host.  nginx fetches the file, streams it to the client, stores it
whole in the landing folder and logs one line.  The worker reads that line,
checks the file as its own downloads are checked (admission, HTML, size,
SHA-256), renames it into the cache, publishes it, and only then lets go of the
lock.  Clients asking for the file meanwhile wait for that and are then served
by nginx from the published tree.  So a miss moves at nginx's speed instead of
through mitmproxy's Python relay, and nothing changes in what is stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mitmproxy import http

from pkgcache_suite.background import Tasks
from pkgcache_suite.indexes.filecheck import check_file
from pkgcache_suite.indexes.kinds import url_digest
from pkgcache_suite.policy.admission import HTML_PAGE, admit, looks_like_html, parse_length
from pkgcache_suite.policy.destinations import is_local_address, parse_ip
from pkgcache_suite.policy.frontfetch import (may_fetch, next_speed, quick_enough)
from pkgcache_suite.policy.rules import Kind
from pkgcache_suite.storage import Entry, StoreError, VerifyError, adopt_file
from pkgcache_suite.tier.protocol import FETCH_LOG, FETCH_PREFIX, LANDING, NGINX_PID
from pkgcache_suite.tier.fetchlog import FetchRecord, Outcome, outcome, parse_line
from pkgcache_suite.tier.grants import give, take_back
from pkgcache_suite.tier.landing import process_alive
from pkgcache_suite.transfer.answers import count
from pkgcache_suite.transfer.fronthit import front_facts
from pkgcache_suite.transfer.flight import FlightState
from pkgcache_suite.transfer.state import MARKERS, FlowState, WantedNote, WantedSource

if TYPE_CHECKING:
    from pkgcache_suite.context import CacheContext
    from pkgcache_suite.offline.reachability import Reachability
    from pkgcache_suite.transfer.aftercommit import AfterCommit
    from pkgcache_suite.storage.opened import OpenedStore
    from pkgcache_suite.transfer.download import Downloads

log = logging.getLogger("pkgcache")

POLL = 0.02  # how often the fetch log is read while nginx fetches for this worker
NGINX_CHECK = 1.0  # how often it is checked that the nginx fetching is still the one running
LOG_SETTLE = 5.0  # seconds a rotated fetch log is still read: nginx's workers reopen theirs a little later


@dataclass
class Pending:
    """A miss nginx is fetching for this worker."""

    st: FlowState
    token: str
    host: str
    port: int
    nginx_pid: int  # the nginx asked: if it is no longer the one running, the download will never be logged
    wanted: WantedNote  # what to record if upstream turns out unreachable, as the worker does


@dataclass(frozen=True)
class Admitted:
    outcome: Outcome
    entry: Entry | None = None
    why: str | None = None  # why a landed file was not stored
    broken: bool = False  # not stored because it was wrong, not because it was not for storing


def _pid(run: Path) -> int | None:
    try:
        return int((run / NGINX_PID).read_text().strip())
    except (OSError, ValueError):
        return None


class FrontFetches:
    def __init__(self, shared: CacheContext, downloads: Downloads, storage: OpenedStore, reach: Reachability,
                 after: AfterCommit, wanted: WantedSource) -> None:
        self.c, self.downloads, self.after, self.wanted = shared, downloads, after, wanted
        self.storage, self.reach = storage, reach
        self.pending: dict[str, Pending] = {}
        self.tasks = Tasks()
        self._fd = -1
        self._buf = b""
        self._old: tuple[int, float, bytes] | None = None  # a rotated log still read for a while: fd, since, rest
        self.speeds: dict[tuple[str, int], float] = {}  # origin -> bytes/s measured from the downloads nginx made
        self._watching = False

    @property
    def run_dir(self) -> Path | None:
        return self.storage.settings.front_run

    # -- misses -------------------------------------------------------------------------------

    async def lead(self, flow: http.HTTPFlow, st: FlowState, note: WantedNote) -> bool:
        """Hand this download (the caller holds its lock) to nginx: True, or False when the worker fetches
        it itself."""
        run, store = self.run_dir, self.storage.store
        if run is None or may_fetch(front_facts(flow, st, True)) is not None:
            return False
        min_free = self.storage.settings.min_free
        if self.downloads.diskguard.refuse(store.root, min_free, None):
            return False  # the worker passes it on unstored, and says so
        req = flow.request
        expected = store.expected(st.key)
        if not quick_enough(expected[0] if expected else None, self.speeds.get((req.host, req.port))):
            return False  # slow: the worker streams it to everyone who asks meanwhile
        addr, nginx = await self._address(req.host), _pid(run)
        if addr is None or nginx is None or not self._open_log(run):
            return False  # no address to give, or no nginx to watch: the worker fetches it itself
        token = f"{os.getpid():08x}{secrets.token_hex(12)}"
        host = f"[{req.host}]" if ":" in req.host else req.host
        authority = host if req.port == 80 else f"{host}:{req.port}"
        target = f"[{addr}]:{req.port}" if ":" in addr else f"{addr}:{req.port}"
        try:
            give(run, token, target, authority)  # nginx fetches this download and nothing else
        except (OSError, ValueError) as e:
            log.warning("pkgcache: cannot grant nginx the download of %s (%s); this worker fetches it", st.url, e)
            return False
        st.flight = self.downloads.new_flight(st.key)
        st.flight.by_front = True
        self.pending[token] = Pending(st, token, req.host, req.port, nginx, note)
        where = f"{FETCH_PREFIX}{token}/{target}/{authority}"
        flow.response = http.Response.make(200, b"", {"X-Accel-Redirect": where})
        flow.comment = f"pkgcache: MISS ({st.kind.value}, fetched and stored by the front)"
        flow.marked = MARKERS["MISS"]
        st.x_cache = "MISS"
        if not self._watching:
            self._watching = True
            self.tasks.start(self._watch(run), "reading the front's fetch log")
        return True

    async def _address(self, host: str) -> str | None:
        """The address nginx connects to: a literal was checked by the router; a name's address is checked
        here, and one on the proxy host itself is left to the worker's own path (which refuses or allows it)."""
        literal = parse_ip(host)
        if literal is not None:
            return str(literal)
        found = [a for a in (parse_ip(x) for x in await self.c.resolver.addresses(host)) if a is not None]
        if not found:
            return None
        first = sorted(found, key=lambda a: (a.version, str(a)))[0]
        return None if is_local_address(first) else str(first)

    def _open_log(self, run: Path) -> bool:
        if self._fd >= 0:
            return True
        try:
            self._fd = os.open(run / FETCH_LOG, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            log.warning("pkgcache: cannot read the front's fetch log (%s); this worker fetches misses itself", e)
            return False
        os.lseek(self._fd, 0, os.SEEK_END)  # earlier lines are for downloads this process never asked for
        return True

    def _read_records(self, run: Path) -> list[FetchRecord]:
        """New complete lines.  When the supervisor has rotated the log and nginx opened a fresh one, the old
        one is still read for a while (nginx's worker processes reopen theirs a moment after)."""
        try:
            fresh = os.stat(run / FETCH_LOG).st_ino != os.fstat(self._fd).st_ino
        except OSError:
            fresh = False  # renamed, nginx not yet told to reopen: keep reading the old one
        if fresh:
            if self._old is not None:
                os.close(self._old[0])
            self._old = (self._fd, time.monotonic(), self._buf)
            self._fd, self._buf = os.open(run / FETCH_LOG, os.O_RDONLY | os.O_CLOEXEC), b""
        out: list[FetchRecord] = []
        if self._old is not None:
            fd, since, buf = self._old
            buf = self._lines(fd, buf, out)
            self._old = (fd, since, buf)
            if time.monotonic() - since > LOG_SETTLE:
                os.close(fd)
                self._old = None
        self._buf = self._lines(self._fd, self._buf, out)
        return out

    @staticmethod
    def _lines(fd: int, buf: bytes, out: list[FetchRecord]) -> bytes:
        while data := os.read(fd, 1 << 16):
            buf += data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            rec = parse_line(line.decode("utf-8", "replace"))
            if rec is not None:
                out.append(rec)
        return rest

    async def _watch(self, run: Path) -> None:
        checked = time.monotonic()
        try:
            while self.pending:
                await asyncio.sleep(POLL)
                for rec in self._read_records(run):
                    p = self.pending.pop(rec.token, None)
                    if p is not None:
                        take_back(run, rec.token)  # logged: the download is over, the token fetches no more
                        self.tasks.start(self._complete(run, p, rec), f"admitting {p.st.url}")
                if time.monotonic() - checked > NGINX_CHECK:
                    checked = time.monotonic()
                    self._fail_orphans(run)
        finally:
            self._watching = False

    def _fail_orphans(self, run: Path) -> None:
        """nginx was restarted (or died) while fetching: those downloads will never be logged."""
        now = _pid(run)
        for token, p in list(self.pending.items()):
            if p.nginx_pid != now or not process_alive(now):
                del self.pending[token]
                (run / LANDING / token).unlink(missing_ok=True)
                self._settle(p, Admitted(Outcome.BROKEN, why="nginx stopped before the download ended"))

    async def _complete(self, run: Path, p: Pending, rec: FetchRecord) -> None:
        landed = run / LANDING / rec.token
        try:
            result = await asyncio.to_thread(self._admit, p.st, rec, landed)
        except Exception as e:  # whatever failed, the lock is let go and followers are told
            log.exception("pkgcache: admitting %s failed", p.st.url)
            result = Admitted(Outcome.BROKEN, why=f"internal error: {e}")
        finally:
            landed.unlink(missing_ok=True)  # an admitted file was renamed away
        self._settle(p, result, rec)

    def _admit(self, st: FlowState, rec: FetchRecord, landed: Path) -> Admitted:
        """Runs in a thread: the body is read once, to hash it."""
        what = outcome(rec, landed.is_file())
        store = self.storage.store
        if what is not Outcome.LANDED:
            return Admitted(what)
        ref = store.expected(st.key)
        verdict = admit(st.kind.value, rec.headers, "HTTP/1.1", url_digest(st.url), ref)
        if not verdict.store:
            return Admitted(what, why=verdict.why)
        with open(landed, "rb") as f:
            if looks_like_html(f.read(512)):
                return Admitted(what, why=HTML_PAGE)
        if st.kind is Kind.IMMUTABLE and (check := store.expected_check(st.key)) and \
                (why := check_file(str(landed), check)):
            return Admitted(what, why=why, broken=True)
        try:
            length = verdict.length if verdict.length is not None else parse_length(rec.headers.get("content-length"))
            meta = {"content_type": rec.headers.get("content-type", "application/octet-stream"),
                    "last_modified": rec.headers.get("last-modified"), "etag": rec.headers.get("etag")}
            entry = adopt_file(store, st.key, st.url, st.kind.value, landed, length, verdict.sha256, meta)
        except (VerifyError, ValueError, OSError, StoreError) as e:
            return Admitted(what, why=str(e), broken=True)
        return Admitted(what, entry=entry)

    def _settle(self, p: Pending, a: Admitted, rec: FetchRecord | None = None) -> None:
        st, store, reach = p.st, self.storage.store, self.reach
        if self.run_dir is not None:
            take_back(self.run_dir, p.token)
        if rec is not None:
            reach.mark(p.host, p.port, a.outcome is not Outcome.UNREACHABLE)
        if rec is not None and a.outcome is Outcome.LANDED:
            self.measured(p.host, p.port, rec.upstream_bytes, rec.upstream_time)
        if a.entry is not None:
            count(self.c, st, "miss", from_upstream=a.entry.length)
            st.entry = a.entry
            self.downloads.finish(st, FlightState.DONE)
            store.forget_missing(st.key)
            self.after.stored(a.entry)
            return
        if a.outcome is Outcome.UNREACHABLE and reach.mode == "auto":
            w = p.wanted
            self.wanted.wanted_list().record(w.url, w.client, w.headers, w.kind)
        if a.outcome is Outcome.MISSING:
            store.remember_missing(st.key, time.time())
        if a.outcome in (Outcome.MISSING, Outcome.ANSWERED) or (a.outcome is Outcome.LANDED and not a.broken):
            if a.why:
                log.warning("pkgcache: %s: not stored: %s", st.url, a.why)
            count(self.c, st, "pass")
            self.downloads.finish(st, FlightState.UNCACHEABLE)
            return
        why = a.why or ("upstream could not be reached" if a.outcome is Outcome.UNREACHABLE
                        else "the body did not arrive whole")
        log.warning("pkgcache: %s: download failed (%s); nothing stored", st.url, why)
        count(self.c, st, "failed")
        self.downloads.finish(st, FlightState.FAILED)

    def measured(self, host: str, port: int, nbytes: int, seconds: float | None) -> None:
        """One more download from an origin, by nginx or by the worker: its speed decides where the next goes."""
        speed = next_speed(self.speeds.get((host, port)), nbytes, seconds)
        if speed is not None:
            if len(self.speeds) > 10_000:  # clients name the origins: keep what they can grow bounded
                self.speeds.clear()
            self.speeds[(host, port)] = speed

    def stop(self) -> None:
        """The worker stops: downloads nginx still fetches are given up (their locks go with the process)."""
        self.tasks.cancel_all()
        for p in self.pending.values():
            if self.run_dir is not None:
                take_back(self.run_dir, p.token)
            self.downloads.finish(p.st, FlightState.FAILED)
        self.pending.clear()
        for fd in (self._fd, self._old[0] if self._old else -1):
            if fd >= 0:
                os.close(fd)
        self._fd, self._old = -1, None
