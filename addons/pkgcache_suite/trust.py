"""Which certificate authorities pkgcache trusts for upstream HTTPS: the machine's, as admins expect.

mitmproxy and httpx bring certifi's bundle; on a network whose TLS-inspecting CA sits only in the
system store (or in ``SSL_CERT_FILE``), that bundle fails every HTTPS download cold.  The proxy and
``pkgcache fetch`` both take the CA file from here: an explicit one (``--cacert``,
``ssl_verify_upstream_trusted_ca``), else ``SSL_CERT_FILE``, else the system bundle OpenSSL was built to
use, else the usual Debian and Fedora bundle paths.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def system_ca_file(env: Mapping[str, str] = os.environ) -> str | None:
    """The CA file the machine trusts (None: none found; the library's own bundle then applies)."""
    named = env.get("SSL_CERT_FILE")
    if named and os.path.isfile(named):
        return named
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.openssl_cafile, *BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def client_context(cacert: str | None = None) -> ssl.SSLContext:
    """A verifying client context for cacert, or for the machine's CAs; OSError/ssl.SSLError if the file
    cannot be read as certificates."""
    return ssl.create_default_context(cafile=cacert or system_ca_file())


def is_tls_failure(message: str) -> bool:
    """Whether an upstream error message is a TLS failure (a certificate not trusted, a handshake refused),
    which says nothing about the route being up or down."""
    m = message.lower()
    return any(w in m for w in ("certificate", "tls", "ssl", "handshake"))
