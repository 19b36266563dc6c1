"""Mirror-style URLs (apt-cacher-ng's): where a request to the reverse listener really goes.

``http://PROXY/REPOSITORY/path`` names a configured repository, ``http://PROXY/HOSTNAME/path`` a host,
``http://PROXY/HTTPS///HOSTNAME/path`` a host over HTTPS, and ``http://PROXY/v2/...?ns=REGISTRY`` (what
containerd asks a mirror) a registry over HTTPS.  The listener's own reverse target is a
placeholder and is never contacted: the request is retargeted here, before access control looks at it.
"""

from __future__ import annotations

import re

from mitmproxy import http

from pkgcache_suite.repos.config import RepoConfig

META_REPO = "pkgcache_repo"
META_KEYRINGS = "pkgcache_keyrings"  # a repository's own keyrings, one path a line ("": none); unset: not given
META_REPO_PATH = "pkgcache_repo_path"


def retarget(req: http.Request, scheme: str, hostport: str, path: str) -> None:
    """Send req to scheme://hostport/path, its Host header with it."""
    host, _, port = hostport.partition(":")
    req.scheme = scheme
    req.host = host
    req.port = int(port) if port.isdigit() else (443 if scheme == "https" else 80)
    req.path = path
    req.host_header = hostport


def retarget_https(req: http.Request, rest: str) -> None:
    """apt-cacher-ng's ``HTTPS///HOST/path`` form, rest being what follows the three slashes: fetched over
    HTTPS (in a mirror-style path and in a proxy-style ``http://HTTPS///...`` URL alike)."""
    host, _, tail = rest.partition("/")
    retarget(req, "https", host, "/" + tail)


REGISTRY_NAME = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _containerd_namespace(req: http.Request) -> str | None:
    """containerd asks a mirror for `/v2/...?ns=REGISTRY` (its hosts.toml): the registry is named, and is
    reached over HTTPS.  None when the request is not one; "" once retargeted (the ns parameter, the mirror's
    only, is not passed on); a reason when the name is not a registry's."""
    if not req.path.startswith("/v2/") or "ns" not in req.query:
        return None
    ns = req.query["ns"]
    if not REGISTRY_NAME.match(ns) or ns.startswith((".", "-")):
        return f"containerd's ns={ns[:100]!r} names no registry"
    del req.query["ns"]
    retarget(req, "https", ns, req.path)
    return ""


def mirror_style(flow: http.HTTPFlow, cfg: RepoConfig) -> str | None:
    """Retarget a mirror-style request; why it must be refused (None: it was retargeted, or a configured
    repository with targets takes it over later)."""
    req = flow.request
    path = req.path
    if path.startswith(("/HTTPS///", "/https///")):
        retarget_https(req, path[len("/HTTPS///"):])
        return None
    m = cfg.match_mirror_path(path.split("?", 1)[0])
    if m is not None:
        repo, rest = m
        flow.metadata[META_REPO], flow.metadata[META_REPO_PATH] = repo.name, rest
        if not repo.targets:
            hostish = [x for x in repo.merge if not x.startswith("/")]
            if not hostish:
                return f"repository {repo.name} has no target and no URL to fetch from"
            host, _, base = hostish[0].partition("/")
            retarget(req, "http", host, f"/{base}{rest}" if base else rest)
        return None
    if (registry := _containerd_namespace(req)) is not None:
        return registry
    first, _, tail = path.lstrip("/").partition("/")
    if "." in first or ":" in first:
        retarget(req, "http", first, "/" + tail)
        return None
    return f"mirror-style path {path.split('?')[0]!r} names no host or repository"
