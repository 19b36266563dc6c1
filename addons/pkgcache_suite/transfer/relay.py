"""Followers keep getting whole bodies when the cache cannot write (a full disk).

Followers normally read the leader's partial file as it grows.  When writing it
fails, the bytes from the failure on exist only in the leader's stream; the
leader then hands them to a Relay, and followers read the file up to where it
stops and the relay after that.  Memory is bounded: chunks every reader has
passed are dropped, and a reader that falls more than LIMIT bytes behind the
leader is cut (a broken transfer, which clients retry) rather than holding the
whole body in memory.
"""

from __future__ import annotations

LIMIT = 64 << 20


class Relay:
    def __init__(self, base: int, chunks: list[bytes], followers: int, limit: int = LIMIT) -> None:
        self.base = base  # offset of the first byte held
        self.chunks: list[bytes] = []
        self.start = base  # offset of chunks[0]
        self.end = base
        self.limit = limit
        self.readers: dict[int, int] = {}  # reader id -> next offset it wants
        self.pending = followers  # followers that have not joined yet: nothing may be dropped for them
        self.joined: set[int] = set()
        self.cut: set[int] = set()
        self.finished = False  # the leader's stream ended whole
        self.broken = False  # the leader's stream broke
        for c in chunks:
            self.append(c)

    def append(self, chunk: bytes) -> None:
        if chunk:
            self.chunks.append(chunk)
            self.end += len(chunk)
            self._trim()

    def join(self, reader: int, pos: int) -> None:
        """A follower says where it is (it may still be reading the file below base)."""
        if reader not in self.joined:
            self.joined.add(reader)
            self.pending = max(0, self.pending - 1)
        self.readers[reader] = pos

    def read(self, reader: int, pos: int, n: int) -> bytes | None:
        """Up to n bytes at pos; b"" when none are there yet; None when this reader was cut."""
        if reader in self.cut or pos < self.start:
            return None
        self.readers[reader] = pos
        off = self.start
        for c in self.chunks:
            if pos < off + len(c):
                data = c[pos - off:pos - off + n]
                self.readers[reader] = pos + len(data)
                self._trim()
                return data
            off += len(c)
        return b""

    def leave(self, reader: int) -> None:
        if reader not in self.joined:
            self.joined.add(reader)
            self.pending = max(0, self.pending - 1)
        self.readers.pop(reader, None)
        self._trim()

    def _trim(self) -> None:
        over = self.end - self.start > self.limit
        if self.pending and not over:
            return  # a follower that has not joined yet may still need everything
        if over:
            self.pending = 0  # whoever has not joined by now is too far behind
            for r, p in list(self.readers.items()):
                if self.end - p > self.limit:
                    self.cut.add(r)
                    del self.readers[r]
        low = min(self.readers.values(), default=self.end)
        while self.chunks and self.start + len(self.chunks[0]) <= low:
            self.start += len(self.chunks.pop(0))
