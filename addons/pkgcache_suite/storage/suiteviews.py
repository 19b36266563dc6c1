"""Which Release of a suite each client was given, and what each Release names: the record that lets a client
that read one InRelease get the very indexes it names, while the mirror (and the cache) moves on.  And which
signature file goes with a signed index that has one (Release and Release.gpg, repomd.xml and its .asc):
the pair checked together is the pair served together.

Kept in the private area (diskcache), so every process serving the cache (a tier's workers) reads the same
record: a client's InRelease may be answered by one worker and its Packages by another.
"""

from __future__ import annotations

from pathlib import Path

import diskcache

GIVEN_KEPT = 6 * 3600.0  # an apt run reads its indexes within minutes of its InRelease; a day-old view is moot
NAMES_KEPT = 7 * 86400.0
MAX_NAMES = 20_000  # index files one Release names (Debian's main suite: about a thousand)


class SuiteViews:
    def __init__(self, private: Path) -> None:
        self._db = diskcache.Cache(str(private / "suites"), eviction_policy="none", size_limit=2**62)

    def close(self) -> None:
        self._db.close()

    def names(self, release_sha: str) -> dict[str, str] | None:
        """name relative to the suite -> SHA-256, as the Release of this digest lists them (None: not read yet)."""
        v = self._db.get(f"r|{release_sha}")
        return dict(v) if isinstance(v, dict) else None

    def remember_names(self, release_sha: str, names: dict[str, str]) -> None:
        if len(names) <= MAX_NAMES:
            self._db.set(f"r|{release_sha}", names, expire=NAMES_KEPT)

    def given(self, client: str, base: str, release_sha: str) -> None:
        """client was just given the Release (of this digest) of the suite at base."""
        self._db.set(f"c|{client}|{base}", release_sha, expire=GIVEN_KEPT)

    def given_to(self, client: str, base: str) -> str | None:
        v = self._db.get(f"c|{client}|{base}")
        return str(v) if v else None

    def generations(self, base: str, release_sha: str) -> tuple[str, ...]:
        """A suite's Release changed to release_sha: the digests of it and the one before (what stays)."""
        key = f"h|{base}"
        with self._db.transact():
            before = tuple(self._db.get(key, ()))
            if before and before[-1] == release_sha:
                return before
            now = (*before[-1:], release_sha)
            self._db.set(key, now)
        return now

    def pair(self, index_key: str, index_sha: str, signature_sha: str) -> None:
        """The signed index at index_key (these bytes) was checked with the signature file of these bytes."""
        self._db.set(f"p|{index_key}", (index_sha, signature_sha))

    def paired(self, index_key: str) -> tuple[str, str] | None:
        v = self._db.get(f"p|{index_key}")
        return (str(v[0]), str(v[1])) if v else None
