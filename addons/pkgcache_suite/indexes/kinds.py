"""Which cache keys are repository indexes that list package files with sizes and digests."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pkgcache_suite.policy.oci import named_digest

# Debian Packages/Sources (also by their by-hash names) and RPM primary.xml
PACKAGE_INDEX = re.compile(r"/dists/.*/(Packages|Sources)[^/]*$|/dists/.*/by-hash/SHA256/[0-9a-f]+$"
                           r"|/repodata/[^/]*primary")
# a file whose name is its own SHA-256 (Debian by-hash)
BY_HASH = re.compile(r"/by-hash/SHA256/([0-9a-fA-F]{64})$")


def url_digest(url: str) -> str | None:
    """The SHA-256 a URL names its body by: Debian's by-hash names, a registry's blobs and manifests by digest."""
    m = BY_HASH.search(url)
    return m.group(1).lower() if m else named_digest(urlsplit(url).path)
