"""Which cache keys are repository indexes that list package files with sizes and digests."""

from __future__ import annotations

import re

# Debian Packages/Sources (also by their by-hash names) and RPM primary.xml
PACKAGE_INDEX = re.compile(r"/dists/.*/(Packages|Sources)[^/]*$|/dists/.*/by-hash/SHA256/[0-9a-f]+$"
                           r"|/repodata/[^/]*primary")
# a file whose name is its own SHA-256 (Debian by-hash)
BY_HASH = re.compile(r"/by-hash/SHA256/([0-9a-fA-F]{64})$")
