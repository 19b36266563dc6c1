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
from pathlib import Path

FRONT = "front"


def publishable(key: str, kind: str) -> bool:
    last = key.rsplit("/", 1)[-1]
    return kind == "immutable" and "@q" not in last and last != "_index_" and "~" not in key \
        and not key.startswith("_repo_")


class Published:
    """The front's view of one cache root."""

    def __init__(self, private_dir: Path) -> None:
        self.root = private_dir / FRONT

    @property
    def enabled(self) -> bool:
        return self.root.is_dir()

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

    def enable(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
