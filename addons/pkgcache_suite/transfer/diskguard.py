"""The low-disk watermark: below pkgcache_min_free, new files are passed on and not stored.

A cache that fills its disk takes the machine's logs and databases with it.
Free space is read at most once a second (a statvfs per miss would be cheap,
but a burst of misses needs no more), and the refusal is logged as an error
at most once a minute, so the log says why the hit ratio dropped without
flooding.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pkgcache_suite.units import human_size

log = logging.getLogger("pkgcache")

RECHECK = 1.0
LOG_EVERY = 60.0


class DiskGuard:
    def __init__(self) -> None:
        self._free: tuple[float, int] | None = None
        self._logged = 0.0

    def free(self, root: Path) -> int | None:
        now = time.monotonic()
        if self._free is None or now - self._free[0] >= RECHECK:
            try:
                st = os.statvfs(root)
            except OSError:
                return None
            self._free = (now, st.f_bavail * st.f_frsize)
        return self._free[1]

    def refuse(self, root: Path, min_free: int, incoming: int | None) -> str | None:
        """Why a new file must not be stored (the disk is below the watermark, or would be), or None."""
        if min_free <= 0:
            return None
        free = self.free(root)
        if free is None or free - (incoming or 0) >= min_free:
            return None
        why = (f"the cache's disk is below its low-disk watermark: {human_size(free)} free, "
               f"pkgcache_min_free={human_size(min_free)}")
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            self._logged = now
            log.error("pkgcache: not storing new files: %s", why)
        return why
