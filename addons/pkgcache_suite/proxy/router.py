"""Who may ask for what, and where a request really goes: access control, remapping, failover,
mirror-style and transparent requests, HTTPS interception choices.

Runs before the cache addon.  What it decides for the cache (which repository
namespace a URL belongs to, whether it must not be stored) travels in
``flow.metadata`` as plain strings, so flows stay serialisable for mitmweb.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import ctx, http, tls
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.mode_specs import RegularMode, ReverseMode

from pkgcache_suite.proxy import options, report
from pkgcache_suite.settings import RouterSettings, parse_section
from pkgcache_suite.settings.table import names
from pkgcache_suite.policy.access import client_allowed, port_allowed, same_authority_form
from pkgcache_suite.policy.limits import check_request
from pkgcache_suite.context import CacheContext
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.policy.destinations import is_local_address, parse_ip
from pkgcache_suite.transfer.watchdog import abort_server
from pkgcache_suite.proxy.flowinfo import client_address, client_network
from pkgcache_suite.proxy.front import addressed_to_proxy, take_forwarded
from pkgcache_suite.transfer.refresh import Refresher
from pkgcache_suite.proxy.mirrorstyle import (
    META_KEYRINGS, META_REPO, META_REPO_PATH, mirror_style, retarget, retarget_https,
)
from pkgcache_suite.repos.config import RepoConfig, Repository, TargetHealth
from pkgcache_suite.policy.cachekey import REPO_PREFIX, cache_key, key_for_url

log = logging.getLogger("pkgcache")


_MINE = names(RouterSettings.SECTION)

META_TARGET = "pkgcache_target"
META_NOCACHE = "pkgcache_nocache"
META_KEY_HOST = "pkgcache_key_host"  # the host a request's cache key names, decided from where it really goes


def _refuse(flow: http.HTTPFlow, why: str) -> None:
    log.warning("pkgcache: refused %s %s from %s: %s", flow.request.method, flow.request.pretty_url,
                client_address(flow), why)
    flow.response = http.Response.make(403, f"pkgcache: forbidden: {why}\n".encode(),
                                       {"Content-Type": "text/plain"})
    flow.comment = f"pkgcache: refused ({why})"
    flow.marked = ":red_circle:"


class Router:
    def __init__(self, shared: CacheContext, reach: Reachability) -> None:
        self.c, self.reach = shared, reach
        self.s = RouterSettings()
        self.health = TargetHealth()
        self._tunnels_said: set[str] = set()

    def load(self, loader: Any) -> None:
        options.declare(loader, RouterSettings.SECTION)

    def configure(self, updated: set[str]) -> None:
        """Parse only what changed (mitmproxy passes every option on the first call), then apply it."""
        if not updated & _MINE:
            return
        try:
            s = parse_section(RouterSettings, ctx.options, updated, self.s)
        except ValueError as e:
            options.reject(e, self.c.fail_fast, self.c.started)
        if "pkgcache_conf" in updated:
            self._say_config(s.conf)
        self.s = s

    @staticmethod
    def _say_config(cfg: RepoConfig) -> None:
        for p in cfg.problems:
            log.warning("pkgcache: config: %s", p)
        for n in cfg.notes:
            log.info("pkgcache: config: %s", n)
        if cfg.repos:
            log.info("pkgcache: %d repositories: %s", len(cfg.repos), ", ".join(r.name for r in cfg.repos))

    def keyrings_of(self, key: str) -> tuple[Path, ...] | None:
        """A cache key's repository's own keyrings (`keyring=` in its Remap line); None: not given."""
        if not key.startswith(REPO_PREFIX):
            return None
        name = key[len(REPO_PREFIX):].split("/", 1)[0].lower()
        return next((r.keyrings for r in self.s.conf.repos if r.name.lower() == name), None)

    def key_of(self, url: str) -> str:
        """The cache key the proxy uses for url: its repository's namespace when a merge list covers it."""
        parts = urlsplit(url)
        if self.s.conf.repos and parts.hostname:
            scheme = parts.scheme or "http"
            port = parts.port or (443 if scheme == "https" else 80)
            m = self.s.conf.match(parts.hostname, port, scheme, parts.path or "/")
            if m is None:  # a target URL: map it back through the targets of each repository
                for repo in self.s.conf.repos:
                    for t in repo.targets:
                        if url == t or url.startswith(t + "/"):
                            m = (repo, url[len(t):].split("?", 1)[0] or "/")
                            break
                    if m:
                        break
            if m is not None:
                return cache_key(scheme, parts.hostname, port, m[1] + (f"?{parts.query}" if parts.query else ""),
                                 repo=m[0].name)
        return key_for_url(url)

    # -- access ---------------------------------------------------------------------

    def _client_ok(self, flow: http.HTTPFlow) -> bool:
        take_forwarded(flow, self.s.trusted_front)
        return client_allowed(client_address(flow, ""), self.s.allow_clients)

    def _port_ok(self, port: int) -> bool:
        return port_allowed(port, self.s.allow_ports)

    async def _client_destination_ok(self, flow: http.HTTPFlow) -> bool:
        """The port and host a client named are allowed (else the flow is refused)."""
        req = flow.request
        if not self._port_ok(req.port):
            _refuse(flow, f"port {req.port} is not allowed (AllowUserPorts)")
            return False
        if await self._destination_refused(req.host):
            _refuse(flow, f"{req.host} is a loopback or link-local destination (pkgcache_allow_loopback)")
            return False
        return True

    async def _destination_refused(self, host: str) -> bool:
        """Loopback and link-local destinations are the proxy host's own: refused unless allowed."""
        return not self.s.allow_loopback and await self.c.resolver.is_local(host)

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if flow.response is not None or flow.error is not None or not flow.live or Refresher.is_refresh(flow):
            return  # a background refresh is a copy of a request this router let through already
        if not self._client_ok(flow):
            _refuse(flow, "client address not allowed")
        elif not self._port_ok(req.port):
            _refuse(flow, f"port {req.port} is not allowed (AllowUserPorts)")
        elif self.s.conf.passthrough and not any(p.search(f"{req.host}:{req.port}") for p in self.s.conf.passthrough):
            _refuse(flow, f"CONNECT to {req.host}:{req.port} does not match PassThroughPattern")
        elif await self._destination_refused(req.host):
            _refuse(flow, f"{req.host} is a loopback or link-local destination (pkgcache_allow_loopback)")
        elif self.reach.mode == "on" and not self._intercepted(req.host):
            # a tunnel pkgcache cannot look into can only be served by upstream, which "on" never contacts
            flow.response = http.Response.make(
                504, f"pkgcache: offline (pkgcache_offline=on): {req.host}:{req.port} is not intercepted, "
                     f"so nothing behind it can be answered from the cache\n".encode(), {"Content-Type": "text/plain"})
            flow.comment = "pkgcache: offline, tunnel refused"
        elif not self._intercepted(req.host):
            self._tunnelled(flow)

    def _tunnelled(self, flow: http.HTTPFlow) -> None:
        """A tunnel pkgcache cannot look into: counted, and said once per host with how to cache it."""
        host = f"{flow.request.host}:{flow.request.port}"
        self.c.stats.count("tunnel", "https", host, client=client_network(flow))
        if host not in self._tunnels_said and len(self._tunnels_said) < 10_000:
            self._tunnels_said.add(host)
            log.info("pkgcache: HTTPS to %s is tunnelled, not cached; to cache it, add %s to "
                     "pkgcache_intercept_hosts and give its clients mitmproxy's CA", host, flow.request.host)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        """A name that resolved elsewhere when checked may resolve to a local address now (DNS rebinding):
        the address really connected to is checked again."""
        peer = data.server.peername
        if self.s.allow_loopback or not peer or data.server.via is not None:
            return
        addr = parse_ip(str(peer[0]))
        if addr is None or not is_local_address(addr):
            return
        address = data.server.address
        if address and address[0] in ("127.0.0.1", "::1") and address[1] == self.c.fileserver.port:
            return  # our own file server
        if address and any(urlsplit(t).hostname == address[0] for r in self.s.conf.repos for t in r.targets):
            return  # the admin's configured target
        if address and parse_ip(str(address[0])) is not None:
            return  # a literal address was checked in the request hook
        log.warning("pkgcache: refused connection to %s: it resolved to the local address %s",
                    address, peer[0])
        abort_server(data.client, data.server, "destination resolved to a loopback or link-local address")

    def _intercepted(self, host: str) -> bool:
        return any(fnmatch.fnmatch(host.lower(), pat) for pat in self.s.intercept)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Tunnel HTTPS untouched unless the admin listed the host for interception."""
        host = (data.client_hello.sni or "").lower()
        if not host and data.context.server.address:
            host = str(data.context.server.address[0]).lower()
        if not self._intercepted(host):
            data.ignore_connection = True

    # -- routing ------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        """Access control first, for every request (the report included), then where the request goes."""
        req = flow.request
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        if not self._client_ok(flow):
            _refuse(flow, "client address not allowed")
            return
        bad = check_request(req.path, req.headers.items(multi=True), req.method)
        if bad is not None:
            log.warning("pkgcache: refused %s from %s: %s", req.method, client_address(flow), bad.reason)
            flow.response = http.Response.make(bad.status, f"pkgcache: {bad.reason}\n".encode(),
                                               {"Content-Type": "text/plain"})
            flow.comment = f"pkgcache: refused ({bad.reason})"
            return
        if report.is_report_target(req):
            return  # answered by the cache addon, inside the proxy: never forwarded anywhere
        if flow.metadata.get(report.META_DASHBOARD) or await addressed_to_proxy(flow, self.c.resolver):
            flow.metadata[report.META_DASHBOARD] = True  # a browser not set up to use the proxy: the report
            return
        await self._route(flow)
        if flow.response is None:
            flow.metadata[META_KEY_HOST] = await self._key_host(flow)

    async def _key_host(self, flow: http.HTTPFlow) -> str:
        """Where the request really goes names its cache key; a Host header that disagrees is ignored.

        The one exception: a request to a bare address (a transparent redirect, a tunnel to an address)
        is filed under the name in its Host header when that name resolves to that very address.
        """
        req = flow.request
        header = req.host_header or ""
        host = f"[{req.host}]" if ":" in req.host else req.host
        target = host if req.port == (443 if req.scheme == "https" else 80) else f"{host}:{req.port}"
        if header and parse_ip(req.host) is not None:
            named = await self.c.resolver.key_host(req.host, header)
            if named != req.host and same_authority_form(header, req.scheme) == same_authority_form(
                    named if target == host else f"{named}:{req.port}", req.scheme):
                return named
        if header and same_authority_form(header, req.scheme) != same_authority_form(target, req.scheme):
            plain = isinstance(flow.client_conn.proxy_mode, RegularMode) and not flow.client_conn.tls_established
            log.warning("pkgcache: %s from %s: Host %r disagrees with the request target; the target wins",
                        req.url, client_address(flow), header)
            if plain:
                req.host_header = target  # upstream is asked for what the cache key says
        return req.host

    async def _route(self, flow: http.HTTPFlow) -> None:
        """Where the request goes.  The port and loopback rules are for destinations a client names: a
        configured repository's target is the admin's word (a mirror-style request's placeholder reverse
        target is never contacted, and the repository's own target is what is asked)."""
        req = flow.request
        if isinstance(flow.client_conn.proxy_mode, ReverseMode):
            refused = mirror_style(flow, self.s.conf)
            if refused:
                _refuse(flow, refused)
            if flow.response is not None:
                return
        elif req.host.upper() == "HTTPS" and req.path.startswith("///"):
            retarget_https(req, req.path[3:])
        if META_REPO not in flow.metadata:
            m = self.s.conf.match(req.host, req.port, req.scheme, req.path.split("?", 1)[0]) if self.s.conf.repos else None
            if m is not None:
                flow.metadata[META_REPO], flow.metadata[META_REPO_PATH] = m[0].name, m[1]
        name = flow.metadata.get(META_REPO)
        repo = next((r for r in self.s.conf.repos if r.name == name), None)
        admins_target = repo is not None and (bool(repo.targets)
                                              or isinstance(flow.client_conn.proxy_mode, ReverseMode))
        if not admins_target and not await self._client_destination_ok(flow):
            return
        if self.s.conf.dont_cache and any(p.search(req.url) for p in self.s.conf.dont_cache):
            flow.metadata[META_NOCACHE] = True
        if repo is None:
            if self.s.force_managed:
                _refuse(flow, f"{req.host} is not a configured repository (ForceManaged)")
            return
        if repo.keyrings is not None:  # its own keyrings (signing/policy.py), as text: flows stay serialisable
            flow.metadata[META_KEYRINGS] = "\n".join(map(str, repo.keyrings))
        query = "?" + req.path.split("?", 1)[1] if "?" in req.path else ""
        if repo.targets:
            target = await self._choose_target(repo)
            t = urlsplit(target)
            retarget(req, t.scheme, t.netloc, t.path + flow.metadata[META_REPO_PATH] + query)
            flow.metadata[META_TARGET] = target
        if repo.proxy:
            p = urlsplit(repo.proxy if "://" in repo.proxy else "http://" + repo.proxy)
            if p.hostname:
                flow.server_conn.via = ("http", (p.hostname, p.port or 3128))

    async def _choose_target(self, repo: Repository) -> str:
        """The first target not marked bad and not known unreachable (probed before the request goes out)."""
        r = self.reach
        for target in repo.targets:
            if self.health.is_bad(target):
                continue
            t = urlsplit(target)
            port = t.port or (443 if t.scheme == "https" else 80)
            if r.mode == "auto" and await r.offline(t.hostname or "", port, fallback=True):
                self._mark_bad(target, "unreachable")
                continue
            return target
        return repo.targets[0]  # all bad: try the preferred one; offline handling takes it from there

    def _mark_bad(self, target: str, why: str) -> None:
        if not self.health.is_bad(target):
            log.warning("pkgcache: target %s marked bad for a while: %s", target, why)
        self.health.mark_bad(target, why)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        target = flow.metadata.get(META_TARGET)
        if target is None or flow.response is None or flow.error is not None:
            return
        code = flow.response.status_code
        if code >= 500:
            self._mark_bad(target, f"HTTP {code}")
        elif code >= 400 and self._is_keyfile(flow):  # a plain 404 elsewhere is an answer, not a failure
            self._mark_bad(target, f"HTTP {code} on key file {flow.metadata.get(META_REPO_PATH)}")

    def _is_keyfile(self, flow: http.HTTPFlow) -> bool:
        name = flow.metadata.get(META_REPO)
        repo = next((r for r in self.s.conf.repos if r.name == name), None)
        path = flow.metadata.get(META_REPO_PATH, "")
        return repo is not None and any(k.search(path) for k in repo.keyfiles)

    def error(self, flow: http.HTTPFlow) -> None:
        target = flow.metadata.get(META_TARGET)
        if target is not None and flow.response is None:
            self._mark_bad(target, flow.error.msg if flow.error else "connection failed")

    def info(self) -> dict[str, Any]:
        return {"repositories": [r.name for r in self.s.conf.repos], "bad_targets": self.health.snapshot()}
