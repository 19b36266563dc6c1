"""What the transfer and maintenance code is handed instead of a shared bag: the open store and its settings.

The store addon (proxy/storeaddon.py) is the one implementation; these
properties are never None once mitmproxy has configured the suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pkgcache_suite.policy.rules import Classifier
    from pkgcache_suite.settings import Settings
    from pkgcache_suite.storage.store import CacheStore


class OpenedStore(Protocol):
    @property
    def is_open(self) -> bool: ...

    @property
    def store(self) -> CacheStore: ...

    @property
    def classifier(self) -> Classifier: ...

    @property
    def settings(self) -> Settings: ...
