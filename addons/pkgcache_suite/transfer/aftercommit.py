"""What follows every committed body, whoever committed it (a worker's own download, or nginx's).

An index refresh starts the check of the package files it lists (transfer/stalecopies.py), a newer Release
lets go of the index copies kept for the one before last (transfer/suiteswitch.py), and a commit past
pkgcache_max_size starts eviction (maintenance/housekeeping.py).  The downloads are handed this object instead of
calling back up into the addon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pkgcache_suite.storage import Entry

if TYPE_CHECKING:
    from pkgcache_suite.maintenance.housekeeping import Housekeeping
    from pkgcache_suite.transfer.stalecopies import StaleCopies
    from pkgcache_suite.transfer.suiteswitch import SuiteSwitch


class AfterCommit:
    def __init__(self, stale: StaleCopies, housekeeping: Housekeeping, suites: SuiteSwitch) -> None:
        self.stale, self.housekeeping, self.suites = stale, housekeeping, suites

    def stored(self, entry: Entry) -> None:
        self.stale.index_stored(entry.key)
        if self.suites.is_release(entry.key):
            self.suites.release_stored(entry)
        self.housekeeping.note_stored(entry.length)
