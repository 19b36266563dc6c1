"""Signed indexes: held whole, checked, and only then stored or served.

A streamed body reaches the client as it arrives, so a signed index is not streamed: mitmproxy reads it whole
(it is small, and it is held only when its Content-Length says so), its signature is checked with gpgv
against the keyrings that vouch for it (signing/policy.py), and then it is stored and passed on, or, when it
does not verify, never stored: the client is answered with the last good copy (X-Cache: STALE), the error
is logged, counted (bad_signature, on the dashboard and in /metrics) and named on the dashboard until a
good copy comes in.

An InRelease and an APKINDEX carry their signature.  A Release, a repomd.xml or a pacman database is signed
by a file beside it: that file is fetched from the same upstream while the index is held, checked with it,
and stored with it; a client asking for the signature afterwards gets the very one its index was checked
with.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from mitmproxy import ctx, http

from pkgcache_suite import trust
from pkgcache_suite.policy.admission import parse_length
from pkgcache_suite.proxy.mirrorstyle import META_KEYRINGS
from pkgcache_suite.signing import apksign, gpgv
from pkgcache_suite.signing.policy import (
    MAX_SIGNATURE, MAX_SIGNED, ORIGIN_HEAD, detached_suffix, is_apkindex, is_signed_index, keyring_dirs,
    may_need_check, signed_by_file,
)
from pkgcache_suite.storage import Entry
from pkgcache_suite.transfer.answers import count
from pkgcache_suite.transfer.flight import FlightState
from pkgcache_suite.transfer.phase import Event, Phase

if TYPE_CHECKING:
    from pkgcache_suite.transfer.download import Downloads
    from pkgcache_suite.transfer.state import FlowState

log = logging.getLogger("pkgcache")
SIGNATURE_TIMEOUT = 20.0
KEPT_HEADERS = ("content-type", "last-modified", "etag")


class SignedIndexes:
    def __init__(self, downloads: Downloads) -> None:
        self.d = downloads

    @staticmethod
    def _repo_keyrings(flow: http.HTTPFlow) -> tuple[Path, ...] | None:
        """Its repository's own keyrings (`keyring=` in its Remap line, as the router noted); None: not given."""
        given = flow.metadata.get(META_KEYRINGS)
        return None if given is None else tuple(Path(p) for p in str(given).splitlines() if p)

    def applies(self, flow: http.HTTPFlow, st: FlowState) -> bool:
        return is_signed_index(st.key) and may_need_check(st.key, self.d.storage.settings.keyrings,
                                                          self._repo_keyrings(flow))

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
            return f"a signed index of {length} bytes is larger than any signed index"
        return None

    @staticmethod
    def hold(st: FlowState, resp: http.Response) -> None:
        """Response headers of a storable signed index: mitmproxy reads it whole, for settle()."""
        resp.stream = False
        st.step(Event.HELD)
        st.x_cache = "MISS"

    def paired(self, key: str) -> Entry | None:
        """The cached signature file a cached signed index was checked with, when key names it."""
        owner = signed_by_file(key)
        store = self.d.storage.store
        pair = store.suites.paired(owner) if owner else None
        if owner is None or pair is None:
            return None
        index, signature = store.lookup(owner), store.lookup(key)
        if index is None or signature is None or (index.sha256, signature.sha256) != pair:
            return None
        return signature

    async def _signature(self, flow: http.HTTPFlow, suffix: str) -> tuple[bytes | None, str]:
        """The signature file beside the held index, from the same upstream (through the same upstream proxy);
        (None, why) when there is none."""
        url = flow.request.url.split("?", 1)[0] + suffix
        verify: Any = False if ctx.options.ssl_insecure else trust.client_context(
            ctx.options.ssl_verify_upstream_trusted_ca)
        via = flow.server_conn.via  # a repository's upstream proxy (its Remap line's proxy=)
        proxy = f"http://{via[1][0]}:{via[1][1]}" if via is not None else None
        try:
            async with httpx.AsyncClient(trust_env=False, verify=verify, timeout=SIGNATURE_TIMEOUT, proxy=proxy,
                                         follow_redirects=True) as client:
                r = await client.get(url, headers={"User-Agent": flow.request.headers.get("user-agent", "pkgcache")})
        except httpx.HTTPError as e:
            return None, f"its signature {url} could not be fetched ({e})"
        if r.status_code != 200 or len(r.content) > MAX_SIGNATURE:
            return None, f"its signature {url} answered {r.status_code}" if r.status_code != 200 \
                else f"its signature {url} is larger than any signature"
        return r.content, ""

    async def settle(self, flow: http.HTTPFlow, st: FlowState) -> None:
        """The held body is here: check it, then store it, or answer with the last good copy."""
        resp = flow.response
        assert resp is not None and st.phase is Phase.HOLDING
        body = resp.raw_content or b""
        cached = self.d.storage.store.read_head(st.key, ORIGIN_HEAD)
        dirs = keyring_dirs(self.d.storage.settings.keyrings, body, cached, st.key, self._repo_keyrings(flow))
        suffix = detached_suffix(st.key)
        signature, why = None, None
        if dirs and suffix:
            signature, missing = await self._signature(flow, suffix)
            why = await gpgv.verify(body, dirs, signature) if signature is not None else missing
        elif dirs and is_apkindex(st.key):
            why = await asyncio.to_thread(apksign.verify, body, dirs)  # an ADB index is inflated to be read
        elif dirs:
            why = await gpgv.verify(body, dirs)
        if why is None:
            self._store(flow, st, body, signature, suffix)
            return
        self._refuse(flow, st, why)

    def _refuse(self, flow: http.HTTPFlow, st: FlowState, why: str) -> None:
        log.error("pkgcache: %s: %s; not stored, and not served as current", st.url, why)
        count(self.d.c, st, "bad_signature")
        store = self.d.storage.store
        store.alerts.raise_for(st.key, st.url, why)
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

    def _commit(self, key: str, url: str, kind: str, body: bytes, headers: http.Headers) -> Entry | None:
        store = self.d.storage.store
        writer = store.writer(key, url, kind)
        writer.begin({"url": url, "length": len(body), "headers": [(k, headers[k]) for k in KEPT_HEADERS
                                                                   if k in headers]})
        writer.write(body)
        meta: dict[str, Any] = {"content_type": headers.get("content-type", "application/octet-stream"),
                                "last_modified": headers.get("last-modified"), "etag": headers.get("etag")}
        entry = writer.commit(len(body), meta) if writer.failed is None else None
        if entry is None:
            log.error("pkgcache: not caching %s: %s", url, writer.failed)
        return entry

    def _store(self, flow: http.HTTPFlow, st: FlowState, body: bytes, signature: bytes | None,
               suffix: str | None) -> None:
        resp = flow.response
        assert resp is not None
        store = self.d.storage.store
        entry = self._commit(st.key, st.url, st.kind.value, body, resp.headers)
        if entry is None:
            st.step(Event.BROKEN)
            self.d.finish(st, FlightState.FAILED)
            return
        if signature is not None and suffix:  # stored beside it: the pair checked is the pair served
            signed = self._commit(st.key + suffix, st.url + suffix, st.kind.value, signature,
                                  http.Headers(content_type="application/pgp-signature"))
            if signed is not None:
                store.suites.pair(entry.key, entry.sha256, signed.sha256)
        st.step(Event.COMPLETE)
        count(self.d.c, st, "miss", from_upstream=len(body))
        st.entry = entry
        self.d.finish(st, FlightState.DONE)
        store.forget_missing(st.key)
        store.alerts.clear(st.key)
        self.d.after.stored(entry)
        resp.headers["X-Cache"] = "MISS"
