"""Which upstream response headers never reach the engines in front of the workers: a table."""

from __future__ import annotations

import pytest

from pkgcache_suite.proxy.boundary import engine_headers


@pytest.mark.parametrize("names,dropped", [
    (["Content-Type", "ETag"], []),
    (["X-Accel-Redirect"], ["X-Accel-Redirect"]),
    (["x-accel-buffering", "X-ACCEL-LIMIT-RATE", "X-Accel-Expires", "X-Accel-Charset"],
     ["x-accel-buffering", "X-ACCEL-LIMIT-RATE", "X-Accel-Expires", "X-Accel-Charset"]),
    (["X-Accel-Anything-New"], ["X-Accel-Anything-New"]),  # a prefix rule: nginx may learn new ones
    (["X-Cache", "x-cache"], ["X-Cache", "x-cache"]),
    (["X-Cache-Status", "X-Accelerated", "Accel-Redirect"], []),
])
def test_engine_headers(names: list[str], dropped: list[str]) -> None:
    assert engine_headers(names) == dropped
