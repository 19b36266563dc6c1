"""What follows every committed body, whoever committed it (a worker's own download, or nginx's).

An index refresh starts the check of the package files it lists
(transfer/stalecopies.py), and a commit past pkgcache_max_size starts eviction
(maintenance/housekeeping.py).  The downloads are handed this object instead of
calling back up into the addon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkgcache_suite.storage import Entry

if TYPE_CHECKING:
    from pkgcache_suite.maintenance.housekeeping import Housekeeping
    from pkgcache_suite.transfer.stalecopies import StaleCopies


class AfterCommit:
    def __init__(self, stale: StaleCopies, housekeeping: Housekeeping) -> None:
        self.stale, self.housekeeping = stale, housekeeping

    def stored(self, entry: Entry) -> None:
        self.stale.index_stored(entry.key)
        self.housekeeping.note_stored(entry.length)
