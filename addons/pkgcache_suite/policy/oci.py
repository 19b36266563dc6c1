"""Container registries (the OCI distribution API, `/v2/...`): what their URLs name.  Pure.

A blob and a manifest asked for by digest are named by their SHA-256: stored only with those bytes, and
then immutable.  A manifest asked for by tag moves, and comes in the representation the client's Accept
allows (an OCI index, a Docker manifest list, one image's manifest), so each set of accepted types is a
variant of its own, stored beside the others.  `/v2/` is the API's version check, the one request a
client makes before it knows whether it needs a token.
"""

from __future__ import annotations

import hashlib
import re

MANIFEST = re.compile(r"/v2/(?P<name>[^?]+?)/manifests/(?P<ref>[^/?]+)(?:\?.*)?$")
BLOB = re.compile(r"/v2/(?P<name>[^?]+?)/blobs/(?P<ref>[^/?]+)(?:\?.*)?$")
DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
# what a client accepts for a manifest; what it sends beyond these does not make another variant
MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws"})
API_ROOT = ("/v2/", "/v2")
API_HEADERS = [("Docker-Distribution-API-Version", "registry/2.0")]


def named_digest(path: str) -> str | None:
    """The SHA-256 (hex) a blob or manifest URL names as its digest; None for a tag or anything else."""
    m = MANIFEST.search(path) or BLOB.search(path)
    d = DIGEST.match(m.group("ref")) if m else None
    return d.group(1) if d else None


def accepted_types(accept: str | None) -> list[str]:
    """The manifest media types an Accept header lists, in its order (one header or several joined)."""
    out = []
    for item in (accept or "")[:4096].split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in MANIFEST_TYPES and media not in out:
            out.append(media)
    return out


def manifest_variant(path: str, accept: str | None) -> str | None:
    """The variant a request for a manifest by tag negotiates: the set of manifest types it accepts (None for
    anything else, and for a manifest by digest, whose bytes its digest fixes)."""
    m = MANIFEST.search(path)
    if m is None or DIGEST.match(m.group("ref")):
        return None
    types = sorted(accepted_types(accept))
    return "oci-" + hashlib.sha256(",".join(types).encode()).hexdigest()[:12]


def acceptable(content_type: str, accept: str | None) -> bool:
    """Whether a stored manifest's type is one the request accepts (no manifest type named: the registry's
    default, an image manifest)."""
    types = accepted_types(accept)
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype in types if types else ctype in MANIFEST_TYPES


def is_manifest(path: str) -> bool:
    return MANIFEST.search(path) is not None


def answer_headers(path: str, sha256: str) -> list[tuple[str, str]]:
    """What a registry sends with a manifest or blob, for a cached one: its digest, which clients read from a
    HEAD of a manifest by tag."""
    if not (MANIFEST.search(path) or BLOB.search(path)):
        return []
    return [("Docker-Content-Digest", f"sha256:{sha256}"), *API_HEADERS]


REFERENCE = re.compile(r"^(?:(?P<scheme>https?)://)?(?P<host>[A-Za-z0-9.-]+(?::[0-9]{1,5})?)/"
                       r"(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
                       r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$")


def reference_url(ref: str) -> str:
    """The manifest URL of an image reference `[http://]REGISTRY/NAME:TAG` (or `@sha256:DIGEST`); a registry
    is reached over HTTPS unless the reference says http://.  ValueError for anything else."""
    m = REFERENCE.match(ref.strip())
    if m is None or "." not in m.group("host") and ":" not in m.group("host") and m.group("host") != "localhost":
        raise ValueError(f"not an image reference with its registry (REGISTRY/NAME:TAG): {ref[:200]!r}")
    return (f"{m.group('scheme') or 'https'}://{m.group('host')}/v2/{m.group('name')}/manifests/"
            f"{m.group('tag') or m.group('digest')}")


def manifest_accept() -> str:
    """What a client that takes any image asks for a manifest with."""
    return ", ".join(sorted(MANIFEST_TYPES))
