"""Assemble the addon suite around one shared CacheContext, in hook order."""

from __future__ import annotations

from typing import Any

from .context import CacheContext
from .core import CacheCore


def build_addons(shared: CacheContext | None = None) -> list[Any]:
    shared = shared or CacheContext()
    return [CacheCore(shared)]
