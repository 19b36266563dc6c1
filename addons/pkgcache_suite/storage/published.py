"""The published tree: what a front engine (nginx, in ``pkgcache serve --workers``) may serve by itself.

``.pkgcache/front/<key>`` holds a hard link to the body of every committed
immutable file, made when the entry is written and removed when it is
forgotten or dropped (expire, verify, the stale-copy check, eviction).  The
front serves only from here, so it never serves a file pkgcache has taken
back, and never an index (those are revalidated by the workers).  A hard link
costs no space, and a new body replaces the link atomically.

Only keys a front can find from a plain request are published: no query
digest, no directory index, no shortened segment.  Anything else is answered
by the workers, as before.  The tree exists only when a front is used: an
embedded proxy publishes nothing.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

FRONT = "front"
HOLD = ".pkgcache-checking"  # no key has a segment starting with .pkgcache: never a published file


def publishable(key: str, kind: str) -> bool:
    last = key.rsplit("/", 1)[-1]
    return kind == "immutable" and "@q" not in last and last != "_index_" and "~" not in key \
        and not key.startswith("_repo_")


class Published:
    """The front's view of one cache root."""

    def __init__(self, private_dir: Path) -> None:
        self.root = private_dir / FRONT
        self._enabled: tuple[float, bool] = (0.0, False)

    @property
    def enabled(self) -> bool:
        """Whether a front uses this cache (asked of the file system at most once a second: hits ask too)."""
        now = time.monotonic()
        if now - self._enabled[0] > 1.0:
            self._enabled = (now, self.root.is_dir())
        return self._enabled[1]

    def path(self, key: str) -> Path:
        return self.root / key

    def publish(self, key: str, kind: str, body: str) -> None:
        """Link the committed body at its key (replacing an older link at once)."""
        if not publishable(key, kind) or not self.enabled:
            return
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}"
        os.link(body, tmp)
        os.replace(tmp, target)

    def unpublish(self, key: str) -> None:
        if not self.enabled:
            return
        try:
            os.unlink(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass

    def hold(self, origin: str) -> None:
        """While a refreshed index of this origin is checked for stale copies, the front passes the origin's
        requests to the workers, which wait for the check (one marker per process: checks may overlap)."""
        if not self.enabled:
            return
        marker = self.root / origin / HOLD / str(os.getpid())
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def held(self, origin: str) -> bool:
        """A process sharing this cache is checking a refreshed index of origin (see hold)."""
        return self.enabled and (self.root / origin / HOLD).is_dir()

    def release(self, origin: str) -> None:
        if not self.enabled:
            return
        held = self.root / origin / HOLD
        (held / str(os.getpid())).unlink(missing_ok=True)
        try:
            held.rmdir()
        except OSError:
            pass  # another process still checks

    def enable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._enabled = (time.monotonic(), True)
