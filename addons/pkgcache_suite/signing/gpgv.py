"""Checking a signed index with gpgv, the verifier apt itself uses, against keyring files: a clearsigned one
(InRelease), or one with its detached signature (Release.gpg, repomd.xml.asc, a pacman .db.sig).

gpgv reads binary keyrings only: an armored one (`.asc`, as repositories publish their keys) is handed to it
unarmored, from a copy named by its digest.  It runs as a child process, off the event loop, with a time
limit; its own words say why a signature does not verify.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TIMEOUT = 20.0
KEYRING_SUFFIXES = (".gpg", ".pgp", ".asc")


class NoVerifier(Exception):
    """gpgv is not installed, or no keyring file is there."""


MAX_KEYRING = 16 << 20


def keyrings(dirs: tuple[Path, ...]) -> list[Path]:
    """The keyring files in these folders (a file named directly counts as itself), armored ones unarmored."""
    found: list[Path] = []
    for d in dirs:
        if d.is_file():
            found.append(d)
        elif d.is_dir():
            found += sorted(p for p in d.iterdir() if p.suffix in KEYRING_SUFFIXES and p.is_file())
    return [u for p in found if (u := _binary(p)) is not None]


def _binary(path: Path) -> Path | None:
    """A keyring gpgv can read: the file itself, or the unarmored copy of an armored one (None: unreadable)."""
    try:
        data = path.read_bytes()[:MAX_KEYRING]
    except OSError:
        return None
    if not data.lstrip().startswith(b"-----BEGIN PGP"):
        return path
    lines = data.decode("ascii", "replace").splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if not ln.strip() and i > 0)  # headers end at a blank line
        body = "".join(ln.strip() for ln in lines[start + 1:] if ln.strip() and not ln.startswith(("=", "-----")))
        raw = base64.b64decode(body, validate=True)
    except (StopIteration, binascii.Error, ValueError):
        return None
    folder = Path(tempfile.gettempdir()) / f"pkgcache-keyrings-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    out = folder / f"{hashlib.sha256(raw).hexdigest()}.gpg"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, out)
    return out


def _command(dirs: tuple[Path, ...], signature: Path | None) -> list[str]:
    """gpgv reading the signed data from its stdin; signature: the detached signature's file (None: inline)."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise NoVerifier("gpgv is not installed (Debian: gpgv)")
    files = keyrings(dirs)
    if not files:
        raise NoVerifier(f"no keyring in {', '.join(map(str, dirs))}")
    return [gpgv, "--quiet", *(a for f in files for a in ("--keyring", str(f))),
            *([str(signature)] if signature is not None else []), "-"]


def _signature_file(signature: bytes | None) -> Path | None:
    """A detached signature, in a private file gpgv can be handed (None for a clearsigned file)."""
    if signature is None:
        return None
    fd, name = tempfile.mkstemp(prefix="pkgcache-sig-", suffix=".sig")
    with os.fdopen(fd, "wb") as f:
        f.write(signature)
    return Path(name)


def _why(code: int, err: bytes) -> str | None:
    if code == 0:
        return None
    words = " ".join(err.decode("utf-8", "replace").split())[:300]
    return f"the signature does not verify ({words or f'gpgv exit status {code}'})"


async def verify(data: bytes, dirs: tuple[Path, ...], signature: bytes | None = None) -> str | None:
    """Why data (a clearsigned file, or the file a detached signature signs) is not signed by a key of these
    keyrings; None when it is."""
    sig = _signature_file(signature)
    try:
        return await _run(data, dirs, sig)
    finally:
        if sig is not None:
            sig.unlink(missing_ok=True)


async def _run(data: bytes, dirs: tuple[Path, ...], sig: Path | None) -> str | None:
    try:
        cmd = _command(dirs, sig)
    except NoVerifier as e:
        return f"it cannot be checked: {e}"
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(data), TIMEOUT)
    except (TimeoutError, asyncio.TimeoutError):
        proc.kill()
        return f"gpgv took longer than {TIMEOUT:.0f} s"
    return _why(proc.returncode or 0, err)


def verify_now(data: bytes, dirs: tuple[Path, ...], signature: bytes | None = None) -> str | None:
    """The same, for a worker thread (an import)."""
    sig = _signature_file(signature)
    try:
        cmd = _command(dirs, sig)
        r = subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except NoVerifier as e:
        return f"it cannot be checked: {e}"
    except subprocess.TimeoutExpired:
        return f"gpgv took longer than {TIMEOUT:.0f} s"
    finally:
        if sig is not None:
            sig.unlink(missing_ok=True)
    return _why(r.returncode, r.stderr)
