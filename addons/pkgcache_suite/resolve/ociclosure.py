"""What `pkgcache fetch` brings for a registry manifest: for an index (a multi-platform image), the manifests
of this site's platforms; for an image manifest, its configuration and layers, each a blob by digest, so a
stated or missed image arrives whole in one trip."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from urllib.parse import urlsplit

from pkgcache_suite.policy import oci

MAX_MANIFEST = 4 << 20
# the machine's name for its processor -> the OCI platform architecture
ARCHS = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64", "i686": "386"}


def claims(url: str) -> bool:
    return oci.is_manifest(url)


def learn(url: str, path: Path, archs: list[str] | None = None) -> list[str]:
    """The manifests and blobs a fetched manifest names; archs: the platforms to bring from an index (default:
    this machine's; every one when the index names none of them)."""
    base = url[: url.rindex("/manifests/")]
    with open(path, "rb") as f:
        data = f.read(MAX_MANIFEST + 1)
    if len(data) > MAX_MANIFEST:
        raise ValueError("larger than any manifest")
    doc = json.loads(data)
    if not isinstance(doc, dict):
        return []
    if isinstance(doc.get("manifests"), list):
        return [f"{base}/manifests/{d['digest']}" for d in _platforms(doc["manifests"], archs)]
    layers = doc.get("layers")
    blobs: list[object] = [doc.get("config"), *(layers if isinstance(layers, list) else [])]
    return [f"{base}/blobs/{b['digest']}" for b in blobs
            if isinstance(b, dict) and isinstance(b.get("digest"), str) and oci.DIGEST.match(b["digest"])]


def _platforms(listed: list[object], archs: list[str] | None) -> list[dict[str, str]]:
    good = [d for d in listed if isinstance(d, dict) and isinstance(d.get("digest"), str)
            and oci.DIGEST.match(d["digest"])]
    want = set(archs or [ARCHS.get(platform.machine(), platform.machine())])
    mine = [d for d in good if isinstance(d.get("platform"), dict) and d["platform"].get("architecture") in want]
    return mine or good


def headers_for(url: str) -> dict[str, str]:
    """A manifest is asked for with every manifest type accepted (a registry refuses an OCI one otherwise)."""
    return {"Accept": oci.manifest_accept()} if oci.is_manifest(url) else {}


def problem(url: str, sha256: str) -> str | None:
    """Why a fetched blob or manifest by digest is not the one its URL names."""
    want = oci.named_digest(urlsplit(url).path)
    if want is None or want == sha256:
        return None
    return f"digest mismatch: got sha256:{sha256}, the URL names sha256:{want}"
