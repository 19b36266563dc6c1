"""Resuming a partial download: the request headers that continue it, and the size the answer announces."""

from __future__ import annotations

import json
from pathlib import Path

import httpx


def resume_headers(headers: dict[str, str], part: Path, side: Path) -> tuple[dict[str, str], int]:
    """Request headers, resuming a partial download (Range validated by If-Range) when one is there;
    without a validator a partial file cannot be trusted to be the same version, so it starts over."""
    have = part.stat().st_size if part.exists() else 0
    req_headers = {k: v for k, v in headers.items() if k in ("accept",)}
    req_headers["Accept-Encoding"] = "identity"
    validators = json.loads(side.read_text()) if have and side.exists() else {}
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
