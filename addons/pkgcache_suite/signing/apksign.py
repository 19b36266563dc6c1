"""Checking an APKINDEX.tar.gz's signature against Alpine public keys, as apk does.

An Alpine (apk-tools 2 format) index is two gzip streams back to back: the first holds one tar member named
``.SIGN.RSA.<key name>`` (an RSA signature over SHA-1) or ``.SIGN.RSA256.<key name>`` (over SHA-256) of the
bytes of the second, which is the index itself.  The key is the file of that name (``*.rsa.pub``, PEM) in a
keyring folder, as in /etc/apk/keys.

apk-tools 3's own index format (ADB) carries its signatures as blocks after its database block: each names
its key by the first 16 bytes of the SHA-512 of the key (its PKCS#1 form) and signs, over SHA-512, the
file's schema, the signature's own head and the digest of the database block.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pkgcache_suite.indexes import adb

MAX_SIGNATURE_SEGMENT = 64 << 10
DIGESTS = {"RSA": hashes.SHA1, "RSA256": hashes.SHA256}
KEY_NAME_MAX = 255
ADB_DIGESTS = {3: lambda b: hashlib.sha256(b).digest(), 4: lambda b: hashlib.sha512(b).digest(),
               5: lambda b: hashlib.sha256(b).digest()[:20]}  # apk's SHA-256, SHA-512, SHA-256/160


def is_adb(data: bytes) -> bool:
    """apk-tools 3's index format (plain or deflated)."""
    return adb.is_adb(data)


def verify(data: bytes, dirs: tuple[Path, ...]) -> str | None:
    """Why data (an APKINDEX.tar.gz, either format) is not signed by a key of these folders; None when it is."""
    return verify_adb(data, dirs) if is_adb(data) else verify_v2(data, dirs)


def _keys(dirs: tuple[Path, ...]) -> list[rsa.RSAPublicKey]:
    found: list[rsa.RSAPublicKey] = []
    for f in (p for d in dirs for p in (sorted(d.iterdir()) if d.is_dir() else [d])):
        try:
            key = serialization.load_pem_public_key(f.read_bytes()[:MAX_SIGNATURE_SEGMENT])
        except (OSError, ValueError):
            continue  # a gpg keyring beside it, or anything else: not an Alpine key
        if isinstance(key, rsa.RSAPublicKey):
            found.append(key)
    return found


def _key_id(key: rsa.RSAPublicKey) -> bytes:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha512(der).digest()[:16]


def verify_adb(data: bytes, dirs: tuple[Path, ...]) -> str | None:
    """The same for apk-tools 3's format."""
    try:
        raw = adb.inflated(data)
        parts = list(adb.blocks(raw))
    except ValueError as e:
        return f"the signature does not verify ({e})"
    database = next((p for kind, p in parts if kind == 0), None)
    signatures = [p for kind, p in parts if kind == 1 and len(p) > 18 and p[0] == 0]
    if database is None or not signatures:
        return "the signature does not verify (unsigned, or no database block)"
    keys = {_key_id(k): k for k in _keys(dirs)}
    for sig in signatures:
        key, digest = keys.get(sig[2:18]), ADB_DIGESTS.get(sig[1])
        if key is None or digest is None:
            continue
        signed = raw[:4] + sig[:18] + digest(database)
        try:
            key.verify(sig[18:], signed, padding.PKCS1v15(), hashes.SHA512())
            return None
        except InvalidSignature:
            continue
    return f"the signature does not verify (not signed by a key in {', '.join(map(str, dirs))})"


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


def verify_v2(data: bytes, dirs: tuple[Path, ...]) -> str | None:
    """The same for the apk-tools 2 format."""
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
