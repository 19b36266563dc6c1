"""The root of every error pkgcache raises, so callers (and the CLI) can tell ours from everything else.

Each concrete error also derives from the built-in it stands for (OSError for
disk trouble, ValueError for bad input), so code that catches those keeps working.
"""

from __future__ import annotations


class PkgcacheError(Exception):
    """Something pkgcache could not do; the message says what and why, for a person to read."""
