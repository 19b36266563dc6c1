"""What the index says about one cached body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    key: str
    url: str
    kind: str
    length: int
    sha256: str
    fetched: float
    content_type: str = "application/octet-stream"
    last_modified: str | None = None
    etag: str | None = None
    validated: float = field(default=0.0)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
