"""What a resolver (apt's, dnf's) answers for a stated request, and the names it may place in a private root."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Resolution:
    urls: list[tuple[str, int, str | None]] = field(default_factory=list)  # (url, size, sha256)
    problems: dict[str, str] = field(default_factory=dict)  # package (or "*", "status", ...) -> the resolver's words


def plain_relative(name: str) -> bool:
    """A name from an index that stays below the folder it is joined to (a hostile index could name ../../x)."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)
