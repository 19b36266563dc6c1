"""Checking an APKINDEX.tar.gz's signature against Alpine public keys, as apk does.

An Alpine (apk-tools 2 format) index is two gzip streams back to back: the first holds one tar member named
``.SIGN.RSA.<key name>`` (an RSA signature over SHA-1) or ``.SIGN.RSA256.<key name>`` (over SHA-256) of the
bytes of the second, which is the index itself.  The key is the file of that name (``*.rsa.pub``, PEM) in a
keyring folder, as in /etc/apk/keys.  apk-tools 3's own index format (ADB) carries its signature inside;
it is not read here.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_SIGNATURE_SEGMENT = 64 << 10
DIGESTS = {"RSA": hashes.SHA1, "RSA256": hashes.SHA256}
KEY_NAME_MAX = 255


def is_adb(data: bytes) -> bool:
    """apk-tools 3's index format (its signature is inside; not checked here)."""
    return data[:4] == b"ADB."


def signed_parts(data: bytes) -> tuple[str, str, bytes, bytes]:
    """(digest, key name, signature, signed bytes) of a signed APKINDEX; ValueError when it carries none."""
    d = zlib.decompressobj(wbits=31)
    try:
        head = d.decompress(data[:MAX_SIGNATURE_SEGMENT], MAX_SIGNATURE_SEGMENT)
    except zlib.error as e:
        raise ValueError(f"not a gzip stream ({e})") from None
    if not d.eof:
        raise ValueError("no signature segment")
    signed = d.unused_data + data[MAX_SIGNATURE_SEGMENT:]
    if len(head) < 512:
        raise ValueError("no signature segment")
    name = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    try:
        size = int(head[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise ValueError("a damaged signature segment") from None
    kind, _, key = name.removeprefix(".SIGN.").partition(".")
    if not name.startswith(".SIGN.") or kind not in DIGESTS or not key or "/" in key or len(key) > KEY_NAME_MAX:
        raise ValueError("unsigned (its first member is not a .SIGN.RSA signature)")
    return kind, key, head[512:512 + size], signed


def verify(data: bytes, dirs: tuple[Path, ...]) -> str | None:
    """Why data (an APKINDEX.tar.gz) is not signed by a key of these folders; None when it is."""
    try:
        kind, key_name, signature, signed = signed_parts(data)
    except ValueError as e:
        return f"the signature does not verify ({e})"
    files = [d / key_name if d.is_dir() else d for d in dirs]
    found = next((f for f in files if f.name == key_name and f.is_file()), None)
    if found is None:
        return f"it cannot be checked: no key named {key_name} in {', '.join(map(str, dirs))}"
    try:
        key = serialization.load_pem_public_key(found.read_bytes()[:MAX_SIGNATURE_SEGMENT])
    except (OSError, ValueError) as e:
        return f"it cannot be checked: {found} is not an RSA public key ({e})"
    if not isinstance(key, rsa.RSAPublicKey):
        return f"it cannot be checked: {found} is not an RSA public key"
    try:
        key.verify(signature, signed, padding.PKCS1v15(), DIGESTS[kind]())
    except InvalidSignature:
        return f"the signature does not verify (not signed by {key_name})"
    return None
