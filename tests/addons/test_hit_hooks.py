"""Range, HEAD and conditional requests on a cached file, at the cache addon's request hook (taddons and
tflow, no sockets): the answer is made from the stored copy and its validators, upstream never asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mitmproxy.test import tflow, tutils

from pkgcache_suite.storage import place_file
from support.hooks import cache_suite

HOST, PATH = "mirror.example", "/debian/pool/main/h/hello/hello_1.0_all.deb"
BODY = bytes(range(256)) * 40  # 10240 bytes
ETAG, LAST_MODIFIED = '"v1"', "Mon, 02 Nov 2026 10:00:00 GMT"
N = len(BODY)

CASES = [
    # (method, request headers, status, body, headers the answer must carry)
    ("GET", {}, 200, BODY, {"content-length": str(N)}),
    ("GET", {"Range": "bytes=10-19"}, 206, BODY[10:20], {"content-range": f"bytes 10-19/{N}"}),
    ("GET", {"Range": "bytes=-5"}, 206, BODY[-5:], {"content-range": f"bytes {N - 5}-{N - 1}/{N}"}),
    ("GET", {"Range": f"bytes={N - 3}-"}, 206, BODY[-3:], {"content-range": f"bytes {N - 3}-{N - 1}/{N}"}),
    ("GET", {"Range": f"bytes={N}-"}, 416, b"", {"content-range": f"bytes */{N}"}),
    ("GET", {"Range": "bytes=0-0,5-6"}, 200, BODY, {}),  # several ranges: the whole file
    ("GET", {"Range": "lines=1-2"}, 200, BODY, {}),  # a unit nobody serves: ignored
    ("HEAD", {}, 200, b"", {"content-length": str(N)}),
    ("HEAD", {"Range": "bytes=0-99"}, 206, b"", {"content-range": f"bytes 0-99/{N}"}),
    ("GET", {"If-None-Match": ETAG}, 304, b"", {"etag": ETAG}),
    ("GET", {"If-None-Match": '"other"'}, 200, BODY, {}),
    ("GET", {"If-Modified-Since": "Tue, 03 Nov 2026 10:00:00 GMT"}, 304, b"", {}),
    ("GET", {"If-Modified-Since": "Sun, 01 Nov 2026 10:00:00 GMT"}, 200, BODY, {}),
    ("GET", {"If-Range": ETAG, "Range": "bytes=0-3"}, 206, BODY[:4], {"content-range": f"bytes 0-3/{N}"}),
    ("GET", {"If-Range": '"other"', "Range": "bytes=0-3"}, 200, BODY, {}),
    ("GET", {"If-Range": LAST_MODIFIED, "Range": "bytes=4-7"}, 206, BODY[4:8], {}),
]


@pytest.mark.parametrize(("method", "headers", "status", "body", "carries"), CASES,
                         ids=[f"{m} {h}" for m, h, *_ in CASES])
async def test_a_hit_answers_range_head_and_conditionals_from_the_stored_copy(
        tmp_path: Path, method: str, headers: dict[str, str], status: int, body: bytes,
        carries: dict[str, str]) -> None:
    with cache_suite(pkgcache_dir=str(tmp_path / "c")) as (core, tctx):
        store = core.storage.store
        assert store is not None
        (tmp_path / "body").write_bytes(BODY)
        place_file(store, f"{HOST}{PATH}", f"http://{HOST}{PATH}", "immutable", tmp_path / "body", N,
                   hashlib.sha256(BODY).hexdigest(), {"etag": ETAG, "last_modified": LAST_MODIFIED})
        f = tflow.tflow(req=tutils.treq(host=HOST, port=80, path=PATH, method=method.encode(),
                                        headers=tuple((k.encode(), v.encode()) for k, v in headers.items())))
        await core.request(f)
        assert f.response is not None, "a hit is answered in the request hook, upstream never asked"
        assert f.response.status_code == status
        assert f.response.headers.get("x-cache") == "HIT"
        assert (f.response.content or b"") == body
        for name, value in carries.items():
            assert f.response.headers.get(name) == value, (name, dict(f.response.headers))
        store.close()
