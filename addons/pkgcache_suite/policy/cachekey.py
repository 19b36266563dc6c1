"""Map request URLs to cache keys: relative, browsable paths that cannot escape the cache root.

The layout follows apt-cacher-ng's (``host/path``) so an admin can find a file by
looking at its URL.  Every decision here is made on the *decoded* segments, because
that is what an origin server would act on: ``%2e%2e`` is as dangerous as ``..``;
but an encoded slash stays inside its segment, as the origin keeps it.
"""

from __future__ import annotations

from pkgcache_suite.errors import PkgcacheError

import hashlib
import re
from urllib.parse import unquote, urlsplit


class UnsafeURL(PkgcacheError, ValueError):
    """The URL cannot be mapped to a cache path without risk; the client gets a 400."""


_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_INDEX_NAME = "_index_"  # stands in for a directory URL ending in "/"
_MAX_SEGMENT = 200


def _safe_segment(seg: str) -> str:
    if seg in (".", ".."):
        raise UnsafeURL(f"path segment {seg!r} is a traversal")
    if "\x00" in seg or "\\" in seg:
        raise UnsafeURL("path contains NUL or backslash")
    if seg.startswith(".pkgcache"):
        raise UnsafeURL("path names pkgcache's private area")
    if len(seg.encode()) > _MAX_SEGMENT:
        digest = hashlib.sha256(seg.encode()).hexdigest()[:16]
        seg = seg[:100] + "~" + digest
    return seg


def host_dir(host: str, port: int | None, scheme: str) -> str:
    """Directory name for an origin: the host, plus the port when it is not the scheme's default."""
    host = host.lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        if not re.fullmatch(r"[0-9a-f:.]+", inner):
            raise UnsafeURL(f"bad IPv6 host {host!r}")
        host = "ipv6_" + inner.replace(":", "_")
    elif ":" in host and re.fullmatch(r"[0-9a-f:.]+", host):
        host = "ipv6_" + host.replace(":", "_")
    elif not _HOST_RE.match(host) or ".." in host:
        raise UnsafeURL(f"bad host name {host!r}")
    # http and https share one namespace: a mirror serves the same bytes on both.
    default = 443 if scheme == "https" else 80
    if port and port != default:
        host = f"{host}_{port}"
    return host


def _decoded_segment(raw: str) -> str:
    """One segment as the origin reads it, named so that segments the origin tells apart stay apart: an
    encoded slash is part of a name, not a separator (``a%2Fb`` is one file, ``a/b`` another), so in the
    key a name's own ``%`` and ``/`` are written ``%25`` and ``%2F``."""
    seg = unquote(raw, errors="strict")
    if "/" in seg and any(p in (".", "..") for p in seg.split("/")):
        raise UnsafeURL(f"path segment {raw[:100]!r} hides a traversal")
    return seg.replace("%", "%25").replace("/", "%2F") if ("%" in seg or "/" in seg) else seg


def _path_segments(path: str) -> list[str]:
    if not path.startswith("/"):
        raise UnsafeURL("path must be absolute (origin-form)")
    raw_path, _, query = path.partition("?")
    raw_path = raw_path.split("#", 1)[0]
    parts = [_decoded_segment(raw) for raw in raw_path.split("/")[1:]]
    segments: list[str] = []
    for seg in parts[:-1]:
        if seg == "":
            continue  # collapse '//' the way most origins do
        segments.append(_safe_segment(seg))
    last = parts[-1] if parts else ""
    if last == "":
        last = _INDEX_NAME
    last = _safe_segment(last)
    if query:
        last = f"{last}@q{hashlib.sha256(query.encode()).hexdigest()[:16]}"
    segments.append(last)
    return segments


def key_for(scheme: str, host: str, port: int | None, path: str) -> str:
    """The cache key (a relative path with '/' separators) for one URL.

    The query string, if any, is folded into the last segment as a digest, so
    ``?foo`` variants stay distinct without creating odd file names.
    """
    return "/".join([host_dir(host, port, scheme), *_path_segments(path)])


REPO_PREFIX = "_repo_"  # host names cannot start with "_", so repository namespaces never collide with hosts


def repo_key(name: str, path: str) -> str:
    """The key of a file of a remapped repository: every mirror in its merge list shares it."""
    return "/".join([REPO_PREFIX + name.lower(), *_path_segments(path)])


def cache_key(scheme: str, host: str, port: int | None, path: str, repo: str | None = None) -> str:
    """The one cache key of a request, used by the proxy, the importer and maintenance alike.

    path is the request path with its query; for a request that belongs to a
    remapped repository, path is the part below the repository's root and the
    key is in the repository's namespace, shared by all its mirrors.
    """
    return repo_key(repo, path) if repo is not None else key_for(scheme, host, port, path)


def key_for_url(url: str) -> str:
    """Convenience wrapper for absolute URLs (used by commands and tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"not an http(s) URL: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return cache_key(parts.scheme, parts.hostname, parts.port, path)
