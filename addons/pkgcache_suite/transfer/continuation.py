"""Finish a shared download after the client that led it went away.

mitmproxy ends the upstream transfer when the client of a flow disconnects.
When that client was leading a download other clients follow (here or in
another process sharing the cache), they would all get a broken transfer; so
the rest of the body is fetched here instead — a Range request from where the
transfer stopped, validated with If-Range — and fed into the same tee, which
writes, notifies followers and commits exactly as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

log = logging.getLogger("pkgcache")


async def continue_download(url: str, offset: int, validator: str | None, feed: Callable[[bytes], bytes],
                            expected: int | None, proxy: str | None = None,
                            timeouts: tuple[float, float] = (15.0, 30.0)) -> str | None:
    """Fetch url from offset into feed(); returns None on success, or why it failed."""
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    try:
        timeout = httpx.Timeout(timeouts[1], connect=timeouts[0])  # connect, then idle between reads
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, proxy=proxy) as client:
            async with client.stream("GET", url, headers=headers) as r:
                skip = 0
                if r.status_code == 206:
                    first = r.headers.get("content-range", "").removeprefix("bytes ").split("-", 1)[0]
                    if first != str(offset):
                        return f"upstream answered the wrong range ({r.headers.get('content-range')})"
                elif r.status_code == 200:
                    skip = offset  # no Range support, or the validator changed: read past what we have
                    if expected is not None and r.headers.get("content-length") not in (None, str(expected)):
                        return "the file changed upstream"
                else:
                    return f"HTTP {r.status_code} when resuming"
                async for chunk in r.aiter_raw(1 << 20):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    feed(chunk)
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"
    if expected is None:
        feed(b"")  # end of a body of unknown length
    return None
