"""Signed indexes (a Debian suite's InRelease): held whole, checked, and only then stored or served.

A streamed body reaches the client as it arrives, so an InRelease is not streamed: mitmproxy reads it whole
(it is small, and it is held only when its Content-Length says so), its signature is checked with gpgv
against the keyrings that vouch for the suite (signing/policy.py), and then it is stored and passed on, or,
when it does not verify, never stored: the client is answered with the last good copy (X-Cache: STALE),
the error is logged and counted (bad_signature, on the dashboard and in /metrics).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from pkgcache_suite.policy.admission import parse_length
from pkgcache_suite.signing import gpgv
from pkgcache_suite.signing.policy import MAX_SIGNED, is_signed_index, keyring_dirs
from pkgcache_suite.storage import StoreError
from pkgcache_suite.transfer.answers import count
from pkgcache_suite.transfer.flight import FlightState
from pkgcache_suite.transfer.phase import Event, Phase

if TYPE_CHECKING:
    from pkgcache_suite.transfer.download import Downloads
    from pkgcache_suite.transfer.state import FlowState

log = logging.getLogger("pkgcache")
HEAD = 64 << 10  # enough of a cached copy to read its Origin


class SignedIndexes:
    def __init__(self, downloads: Downloads) -> None:
        self.d = downloads

    @staticmethod
    def applies(st: FlowState) -> bool:
        return is_signed_index(st.key)

    @staticmethod
    def unheld(resp: http.Response) -> str | None:
        """Why a signed index cannot be held to be checked (then it is passed on, never stored)."""
        try:
            length = parse_length(resp.headers.get("content-length"))
        except ValueError as e:
            return str(e)
        if length is None:
            return "a signed index without a Content-Length cannot be held to be checked"
        if length > MAX_SIGNED:
            return f"a signed index of {length} bytes is larger than any InRelease"
        return None

    @staticmethod
    def hold(st: FlowState, resp: http.Response) -> None:
        """Response headers of a storable signed index: mitmproxy reads it whole, for settle()."""
        resp.stream = False
        st.step(Event.HELD)
        st.x_cache = "MISS"

    def _cached_head(self, st: FlowState) -> bytes | None:
        store = self.d.storage.store
        entry = st.entry or store.lookup(st.key)
        if entry is None:
            return None
        try:
            with open(store.body_path(entry.key), "rb") as f:
                return f.read(HEAD)
        except (OSError, StoreError):
            return None

    async def settle(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """The held body is here: check it, then store it, or answer with the last good copy."""
        resp = flow.response
        assert resp is not None and st.phase is Phase.HOLDING
        body = resp.raw_content or b""
        dirs = keyring_dirs(self.d.storage.settings.keyrings, body, self._cached_head(st))
        why = await gpgv.verify(body, dirs) if dirs else None
        if why is None:
            self._store(flow, st, body)
            return
        log.error("pkgcache: %s: %s; not stored, and not served as current", st.url, why)
        count(self.d.c, st, "bad_signature")
        store = self.d.storage.store
        good = st.entry or store.lookup(st.key)
        if good is not None:
            st.step(Event.CURRENT)
            self.d.finish(st, FlightState.UNCACHEABLE)
            self.d.answers.serve_entry(flow, st, good, "STALE", in_memory=True)
            if flow.response is not None:
                flow.response.headers["Warning"] = '199 pkgcache "Upstream signature does not verify"'
            return
        st.step(Event.BROKEN)
        self.d.finish(st, FlightState.FAILED)
        flow.response = http.Response.make(
            502, f"pkgcache: {st.url}: {why}; it was not stored, and no earlier copy is cached.\n".encode(),
            {"Content-Type": "text/plain", "X-Cache": "MISS"})

    def _store(self, flow: http.HTTPFlow, st: FlowState, body: bytes) -> None:
        resp = flow.response
        assert resp is not None
        store = self.d.storage.store
        keep = [(k, resp.headers[k]) for k in ("content-type", "last-modified", "etag") if k in resp.headers]
        writer = store.writer(st.key, st.url, st.kind.value)
        writer.begin({"url": st.url, "length": len(body), "headers": keep})
        writer.write(body)
        meta: dict[str, Any] = {"content_type": resp.headers.get("content-type", "application/octet-stream"),
                                "last_modified": resp.headers.get("last-modified"), "etag": resp.headers.get("etag")}
        entry = writer.commit(len(body), meta) if writer.failed is None else None
        if entry is None:
            log.error("pkgcache: not caching %s: %s", st.url, writer.failed)
            st.step(Event.BROKEN)
            self.d.finish(st, FlightState.FAILED)
            return
        st.step(Event.COMPLETE)
        count(self.d.c, st, "miss", from_upstream=len(body))
        st.entry = entry
        self.d.finish(st, FlightState.DONE)
        store.forget_missing(st.key)
        self.d.after.stored(entry)
        resp.headers["X-Cache"] = "MISS"
