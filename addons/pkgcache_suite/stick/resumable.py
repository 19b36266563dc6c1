"""Resuming a partial download: the request headers that continue it, and the size the answer announces."""

from __future__ import annotations

from typing import Any

import httpx


def resume_headers(headers: dict[str, str], have: int, validators: dict[str, Any]) -> tuple[dict[str, str], int]:
    """Request headers, resuming a partial download of have bytes (Range validated by If-Range) when there
    is one; without a validator a partial file cannot be trusted to be the same version, so it starts over."""
    req_headers = {k: v for k, v in headers.items() if k in ("accept",)}
    req_headers["Accept-Encoding"] = "identity"
    if have and (validators.get("etag") or validators.get("last_modified")):
        req_headers["Range"] = f"bytes={have}-"
        req_headers["If-Range"] = validators.get("etag") or validators["last_modified"]
        return req_headers, have
    return req_headers, 0


def total_size(r: httpx.Response) -> int | None:
    """The whole file's size as the answer states it (Content-Range of a 206, else Content-Length)."""
    if r.status_code == 206:
        tail = r.headers.get("content-range", "").rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None
    cl = r.headers.get("content-length", "")
    return int(cl) if cl.isdigit() else None
