"""Who may act through the report pages: the admin's credentials, a token bound to them, same-origin only.

The report host is reachable by every client of the proxy, so reading is open
but nothing on an open page helps an attacker: the form token is derived from
the admin's own credentials (HMAC under a secret kept in the cache's private
area, so every process serving one cache, a tier's workers too, issues and
accepts the same token) and is shown only to a request that carries those
credentials.  A browser that holds the admin's Basic credentials still sends
them with a form another site made it post, so an admin action must also come
from the report's own pages: ``Sec-Fetch-Site`` (when the browser sends it)
must be ``same-origin`` or ``none``, and ``Origin`` (when sent) must name the
host the request went to.  Scripts (curl) send neither, and get the token from
``/csrf`` with the credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from hashlib import sha256
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import http

SECRET_FILE = "admin-secret"
SECRET_BYTES = 32


def shared_secret(private_dir: Path | None) -> bytes:
    """The secret of this cache root, made once (exclusively, never through a link) and read after that;
    a process without a cache has one of its own."""
    if private_dir is None:
        return secrets.token_bytes(SECRET_BYTES)
    path = private_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
    for _ in range(50):  # another process may be between its create and its write
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = f.read(SECRET_BYTES + 1)
        if len(data) == SECRET_BYTES:
            return data
    raise OSError(f"{path} is not a secret of {SECRET_BYTES} bytes")


def token(secret: bytes, admin_auth: str) -> str:
    """The form token of an admin: changes with the password, the same in every process of one cache."""
    return hmac.new(secret, b"pkgcache admin form\0" + admin_auth.encode(), sha256).hexdigest()[:32]


def presented(flow: http.HTTPFlow) -> str | None:
    """The user:password a request carries (HTTP Basic), None without or when malformed."""
    given = flow.request.headers.get("authorization", "")
    if not given.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(given[6:].strip(), validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def is_admin(flow: http.HTTPFlow, admin_auth: str | None) -> bool:
    given = presented(flow)
    return admin_auth is not None and admin_auth != "" and given is not None \
        and hmac.compare_digest(given.encode(), admin_auth.encode())


def cross_site(flow: http.HTTPFlow) -> str | None:
    """Why a request does not come from the report's own pages (None: it does, or it is no browser's)."""
    site = flow.request.headers.get("sec-fetch-site", "").lower()
    if site and site not in ("same-origin", "none"):
        return f"a request from another site (Sec-Fetch-Site: {site})"
    origin = flow.request.headers.get("origin")
    if origin is not None:
        o = urlsplit(origin)
        own = {flow.request.host.lower(), f"{flow.request.host.lower()}:{flow.request.port}",
               (flow.request.host_header or "").lower()}
        if origin == "null" or (o.netloc or "").lower() not in own:
            return f"a request from another origin ({origin[:100]})"
    return None
