"""The one cache store: bodies on disk, metadata in diskcache, the private area.

The only code that touches the tree layout or diskcache.  Everything else uses
the names exported here: :class:`CacheStore` (the interface: lookup, entries,
put/forget/drop, open_body, locks, partial files, what indexes list),
:class:`Writer` for a download, :func:`place_file` for a body from elsewhere,
:func:`adopt_file` for a body the tier's nginx stored on the cache's disk,
and the janitor's :func:`sweep_partials` and :func:`reconcile`.
"""

from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.janitor import reconcile, republish, sweep_partials
from pkgcache_suite.storage.placing import VerifyError, adopt_file, file_sha256, keep_copy, place_file
from pkgcache_suite.storage.private import PRIVATE, Lock, StoreError, fd_locked_by_other, private_id
from pkgcache_suite.storage.store import CacheStore
from pkgcache_suite.storage.writer import Writer

__all__ = ["PRIVATE", "CacheStore", "Entry", "Lock", "StoreError", "VerifyError", "Writer", "adopt_file",
           "fd_locked_by_other", "file_sha256", "keep_copy", "place_file", "private_id", "reconcile", "republish",
           "sweep_partials"]
