"""Representations that vary by Accept, stored side by side (RFC 9110 section 12.5.1, RFC 9111 section 4.1).

PyPI's simple pages come as HTML or as JSON (PEP 691) and npm's package
documents as the full or the abbreviated (install-v1) document, from one URL.
Each is stored under its own key: the URL's key plus the variant the request
negotiates, so a client that asked for HTML never gets the JSON.
"""

from __future__ import annotations

# media type -> variant name; the default representation (HTML, the full npm document) has none
KNOWN = {
    "application/vnd.pypi.simple.v1+json": "pypi-json",
    "application/vnd.pypi.simple.latest+json": "pypi-json",
    "application/vnd.pypi.simple.v1+html": "",
    "application/vnd.pypi.simple.latest+html": "",
    "text/html": "",
    "application/vnd.npm.install-v1+json": "npm-abbreviated",
    "application/json": "json",  # never the default: an npm document /name must not collide with /name/-/
}
# response headers a stored representation may vary by: Accept is handled by variants, the encoding by
# asking upstream for identity; anything else (Cookie, Authorization, *) is per client and is not stored
HANDLED_VARY = {"accept", "accept-encoding", "origin"}


def _q(param: str) -> float:
    name, _, value = param.partition("=")
    if name.strip().lower() != "q":
        return -1.0
    try:
        return float(value.strip()[:6])
    except ValueError:
        return 0.0


def variant(accept: str | None) -> str:
    """The variant a request negotiates: '' for the default representation."""
    best, best_q = "", 0.0
    for i, item in enumerate((accept or "")[:1024].split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        name = KNOWN.get(media.lower())
        if name is None:
            continue
        q = max([_q(p) for p in params] + [-1.0])
        q = 1.0 if q < 0 else q
        if q > best_q or (q == best_q and i == 0):
            best, best_q = name, q
    return best


def unhandled_vary(vary: str | None) -> list[str]:
    """The headers of a Vary value that pkgcache cannot key on (``*`` included)."""
    names = [v.strip().lower() for v in (vary or "").split(",") if v.strip()]
    return [n for n in names if n not in HANDLED_VARY]
