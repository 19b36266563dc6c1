"""Assemble the addon suite around one shared CacheContext, in hook order."""

from __future__ import annotations

from typing import Any

from .context import CacheContext
from .core import CacheCore
from .offline import OfflineAddon


def build_addons(shared: CacheContext | None = None) -> list[Any]:
    shared = shared or CacheContext()
    # CacheCore first: its configure() builds the store the offline addon uses.
    return [CacheCore(shared), OfflineAddon(shared)]
