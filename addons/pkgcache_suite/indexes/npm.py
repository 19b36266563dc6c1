"""An npm package document: each version's tarball URL and its digests (`dist.integrity`, a Subresource
Integrity string, usually sha512; `dist.shasum`, a SHA-1), and which versions are deprecated."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

MAX_DOCUMENT = 256 << 20  # the largest documents on the public registry are about 100 MiB


@dataclass(frozen=True)
class Tarball:
    version: str
    url: str
    check: str | None  # "sha512:HEX" (or "sha1:HEX" when no integrity is given)
    deprecated: bool


def _integrity(value: object) -> str | None:
    """The strongest sha512 (else sha1) digest of an SRI string, as ALG:HEX."""
    for item in value.split() if isinstance(value, str) else []:
        alg, _, b64 = item.partition("-")
        if alg == "sha512":
            try:
                raw = base64.b64decode(b64, validate=True)
            except ValueError:
                continue
            if len(raw) == 64:
                return "sha512:" + raw.hex()
    return None


def tarballs(data: bytes) -> Iterator[Tarball]:
    """Every version's tarball a document lists; ValueError when it is not one."""
    if len(data) > MAX_DOCUMENT:
        raise ValueError("a package document larger than any registry's")
    doc = json.loads(data)
    versions = doc.get("versions") if isinstance(doc, dict) else None
    for version, meta in versions.items() if isinstance(versions, dict) else []:
        dist = meta.get("dist") if isinstance(meta, dict) else None
        if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str):
            continue
        check = _integrity(dist.get("integrity"))
        shasum = dist.get("shasum")
        if check is None and isinstance(shasum, str) and len(shasum) == 40:
            check = "sha1:" + shasum.lower()
        yield Tarball(version, dist["tarball"], check, bool(meta.get("deprecated")))
