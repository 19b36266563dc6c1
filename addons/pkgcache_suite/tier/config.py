"""The front's configuration files, generated from what the tier is: pure, so they are tested as text.

HAProxy listens where clients connect.  It enforces the client and port
rules, names the client for the workers (X-Forwarded-For, set by HAProxy
alone), and sends every plain GET or HEAD of an absolute ``http://`` URL
without a query to nginx; everything else (CONNECT, other methods, queries,
requests to the proxy itself) goes to the workers, by a consistent hash of the
URI.  nginx serves a request from the published tree (sendfile, Range, HEAD,
conditionals) when pkgcache has published that file, and otherwise passes it
to the workers by a consistent hash of the URL.  nginx cannot see the port of
an absolute URL, so HAProxy hands it over in ``X-Pkgcache-Authority``.

A worker that decides a package file is a miss to fetch answers nginx with an
``X-Accel-Redirect`` to an internal location: nginx then fetches the file from
the address the worker chose, streams it to the client and stores it whole
(``proxy_store``) in the landing folder, and logs the outcome, from which the
worker admits the file into the cache (see transfer/frontfetch.py).  The worker
still decides everything (access, offline, single flight, what is stored); only
the bytes stay out of Python.  A worker answers a hit on a published file the
same way, with a redirect to the published tree.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from pkgcache_suite.policy.limits import BODY_ON_GET
from pkgcache_suite.storage.published import HOLD
from pkgcache_suite.tier.grants import GRANTS

AUTHORITY = "X-Pkgcache-Authority"  # host[:port] of the requested URL, set by HAProxy from the request line
DIRECT = "X-Pkgcache-Direct"  # set by HAProxy on a request addressed to the proxy itself (a plain browser)
VIA = "X-Pkgcache-Via"  # the address the client connected to, for the setup page
ENGINE = "X-Pkgcache-Engine"  # set by nginx alone: the published path of the request, so a worker may redirect
FETCH_PREFIX = "/.pkgcache-fetch/"  # nginx's internal location fetching and storing a miss: /TOKEN/ADDRESS/HOST
HIT_LOCATION = "@pkgcache_hit"  # nginx's named location serving a published file
FETCH_AGAIN = "@pkgcache_fetch_again"  # ... asking upstream once more after a connect that failed
LANDING = "landing"  # the folder, in the tier's run folder, where nginx stores fetched files (one per token)
FETCH_LOG = "front-fetch.log"  # nginx's line per fetched miss, read by the worker that asked for it
NGINX_PID = "nginx.pid"
# what nginx acts on in a response it proxies; a worker sends only the redirect, and only its own
ACCEL = ("X-Accel-Redirect", "X-Accel-Expires", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset")
REFUSED = "pkgcache: refused a fetch no worker asked for"  # nginx's line for a redirect without its grant


@dataclass(frozen=True)
class Tier:
    listen_host: str  # "" or "*": every interface
    listen_port: int
    workers: list[int]  # loopback ports of the pkgcache workers
    nginx_port: int
    published: Path  # the published tree (nginx's root)
    run_dir: Path  # pid files, logs, the front's access log
    allow_clients: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    allow_ports: set[int] | None = None  # None or {0}: any port
    user: str | None = None  # nginx's worker user, when started as root
    nginx_workers: int = 1
    maxconn: int = 4000  # HAProxy's, within the open-files limit (two sockets and a splice pipe per connection)
    connect_timeout: int = 15  # the workers' pkgcache_connect_timeout, for the misses nginx fetches
    idle_timeout: int = 30  # the workers' pkgcache_idle_timeout

    @property
    def front_log(self) -> Path:
        return self.run_dir / "front-hits.log"

    @property
    def fetch_log(self) -> Path:
        return self.run_dir / FETCH_LOG

    @property
    def landing(self) -> Path:
        return self.run_dir / LANDING

    @property
    def partial(self) -> Path:
        """Where nginx writes a fetch before renaming it into the landing folder (same file system)."""
        return self.landing / ".partial"

    @property
    def grants(self) -> Path:
        """The downloads workers asked nginx to fetch (tier/grants.py)."""
        return self.run_dir / GRANTS

    def make_dirs(self) -> None:
        """The folders nginx's configuration names: it refuses to start without them."""
        self.partial.mkdir(parents=True, exist_ok=True)
        self.grants.mkdir(parents=True, exist_ok=True)
        self.grants.chmod(0o755)  # nginx's worker user looks for grants in it

    @property
    def nginx_socket(self) -> Path | None:
        """HAProxy reaches nginx through a Unix socket (a 1 GiB hit crosses it about 40% faster than loopback
        TCP here), unless its path is too long for one; then through nginx's loopback port."""
        path = self.run_dir / "nginx.sock"
        return path if len(str(path)) < 100 else None


def haproxy_cfg(t: Tier) -> str:
    bind = f"{'*' if t.listen_host in ('', '*', '0.0.0.0') else _bracket(t.listen_host)}:{t.listen_port}"
    lines = [
        "# generated by pkgcache serve --workers: edits are overwritten",
        "global",
        f"    maxconn {t.maxconn}",
        "    tune.http.maxhdr 1000",  # the workers' own limit (policy/limits.py) decides, as without the tier
        # large buffers and spliced responses: a 1 GiB hit crosses HAProxy at about nginx's own speed
        "    tune.bufsize 262144",
        "    tune.pipesize 1048576",
        f"    pidfile {t.run_dir / 'haproxy.pid'}",
        # failed requests and workers going down or up reach the tier's log (through the supervisor)
        "    log stdout format raw local0",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlog-normal",
        "    option dontlognull",  # the supervisor's start-up probe: a connection that sends nothing
        "    timeout connect 5s",
        "    timeout client 300s",
        "    timeout server 300s",
        "    timeout tunnel 1h",
        "    timeout http-request 30s",
        "    retries 3",
        "    option redispatch",
        "    retry-on conn-failure empty-response",
        "    option splice-response",
        "frontend pkgcache",
        f"    bind {bind}",
        "    acl absolute url_beg -i http://",
        "    acl has_query query -m found",
        "    acl get_or_head method GET HEAD",
        # HAProxy drops a Content-Length sent with Transfer-Encoding before any rule sees it; a bodiless
        # method with a body is refused here as the workers refuse it (policy/limits.py)
        f'    http-request return status 400 content-type text/plain string "pkgcache: {BODY_ON_GET}" '
        "if get_or_head { req.hdr_cnt(transfer-encoding) gt 0 }",
    ]
    if t.allow_clients:
        nets = " ".join(str(n) for n in t.allow_clients)
        lines += [f"    acl allowed_client src {nets}",
                  '    http-request return status 403 content-type text/plain string "pkgcache: client address '
                  'not allowed" if !allowed_client']
    if t.allow_ports and 0 not in t.allow_ports:
        ports = " ".join(str(p) for p in sorted(t.allow_ports))
        lines += [f"    acl allowed_port url_port {ports}",
                  '    http-request return status 403 content-type text/plain string "pkgcache: port not '
                  'allowed (AllowUserPorts)" if absolute !allowed_port']
    lines += [
        "    http-request del-header X-Forwarded-For",
        f"    http-request del-header {AUTHORITY}",
        f"    http-request del-header {DIRECT}",
        f"    http-request del-header {ENGINE}",
        f"    http-request set-header {VIA} %[dst]:%[dst_port]",
        "    option forwardfor",
        f"    http-request set-header {AUTHORITY} %[req.hdr(host),lower] if absolute",
        f"    http-request set-header {DIRECT} 1 if !absolute !METH_CONNECT",
        # every answer says what the cache did, HAProxy's own refusals and errors too
        "    http-after-response set-header X-Cache MISS unless { res.hdr(X-Cache) -m found }",
        # unusually many or large header fields: the workers' own limits answer them (policy/limits.py)
        "    acl large_head req.fhdr_cnt() gt 100",
        "    acl large_head req.hdrs,length gt 8000",
        "    use_backend files if get_or_head absolute !has_query !large_head",
        "    default_backend workers",
        "backend files",
        f"    server nginx {f'unix@{t.nginx_socket}' if t.nginx_socket else f'127.0.0.1:{t.nginx_port}'}",
        "backend workers",
        "    balance uri whole",
        "    hash-type consistent",
    ]
    lines += [f"    server w{i} 127.0.0.1:{port} check inter 1s fall 1 rise 1" for i, port in enumerate(t.workers)]
    return "\n".join(lines) + "\n"


def _fetch(t: Tier) -> str:
    """How nginx fetches and stores a granted miss: the fetch location's body, and its one retry's."""
    return f"""            proxy_pass http://$pkgcache_addr$request_uri;
            proxy_pass_request_headers off;  # the tier's own headers and the client's conditionals stay here
            proxy_set_header Host $pkgcache_host;
            proxy_set_header User-Agent $http_user_agent;
            proxy_set_header Accept $http_accept;
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_store {t.landing}/$pkgcache_token;
            proxy_store_access user:rw;
            proxy_temp_path {t.partial};  # beside the landing folder: stored by a rename
            proxy_buffering on;
            proxy_buffer_size 256k;
            proxy_buffers 8 256k;
            proxy_busy_buffers_size 512k;
            proxy_ignore_client_abort on;  # a client that leaves does not stop the download for the cache
            proxy_connect_timeout {t.connect_timeout}s;
            proxy_read_timeout {t.idle_timeout}s;
            proxy_next_upstream off;
            # the origin steers nothing here: its X-Accel-* are neither followed nor passed on, its X-Cache
            # is replaced by ours
            proxy_ignore_headers {" ".join(ACCEL)};
{"".join(f"            proxy_hide_header {h};{chr(10)}" for h in ACCEL)}            proxy_hide_header X-Cache;
            add_header X-Cache MISS always;
            access_log {t.fetch_log} pkgcache_fetch;
"""


def nginx_conf(t: Tier) -> str:
    fetch = _fetch(t)
    workers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in t.workers)
    user = f"user {t.user};\n" if t.user else ""
    authority = f"$http_{AUTHORITY.lower().replace('-', '_')}"
    return f"""# generated by pkgcache serve --workers: edits are overwritten
{user}daemon off;
worker_processes {t.nginx_workers};
pid {t.run_dir / NGINX_PID};
error_log {t.run_dir / 'nginx-error.log'} warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    sendfile_max_chunk 0;  # one sendfile call per body where the socket takes it: about twice as fast here
    keepalive_requests 100000;
    open_file_cache off;  # a file pkgcache takes back is never served again
    disable_symlinks on;
    server_tokens off;
    if_modified_since before;  # as the workers compare it
    large_client_header_buffers 4 64k;  # the workers' own limits decide (policy/limits.py)
    default_type application/octet-stream;
    types {{ }}
    client_body_temp_path {t.run_dir / 'nginx-body'};
    proxy_temp_path {t.run_dir / 'nginx-proxy'};
    log_format pkgcache_hit '$msec $status $body_bytes_sent $http_x_forwarded_for http://{authority}$request_uri';
    # one line per miss nginx fetched for a worker, read by that worker (transfer/frontfetch.py)
    log_format pkgcache_fetch '$pkgcache_token\t$status\t$upstream_status\t$upstream_bytes_received\t'
                              '$upstream_header_time\t$upstream_http_content_length\t'
                              '$upstream_http_transfer_encoding\t$upstream_http_content_type\t'
                              '$upstream_http_content_encoding\t$upstream_http_vary\t'
                              '$upstream_http_last_modified\t$upstream_http_etag\t$body_bytes_sent\t'
                              '$upstream_response_time';
    log_format pkgcache_refused '{REFUSED}: $uri (from $remote_addr)';
    # a request target the workers would read differently from nginx (dot segments, encoded separators,
    # control characters, doubled slashes): never looked up in the published tree, never put in a header
    map $request_uri $pkgcache_plain {{
        "~*%(0[0-9a-f]|1[0-9a-f]|7f|2e|2f|5c|25)" 0;
        "~(^|/)[.][.]?(/|$|[?])" 0;
        "~//" 0;
        "~\\x5c" 0;  # a backslash, which some servers read as a slash
        default 1;
    }}
    # a Range or a conditional: a worker checks nginx would answer it as the worker does (policy/frontfetch.py)
    map "$http_range$http_if_range$http_if_modified_since$http_if_none_match$http_if_match$http_if_unmodified_since"
        $pkgcache_bare {{
        "" 1;
        default 0;
    }}
    map $pkgcache_plain $pkgcache_engine {{
        1 $pkgcache_origin$uri;
        default "";
    }}
    # the published directory of a URL's origin: host, or host_port for a port other than 80
    map {authority} $pkgcache_origin {{
        "~^(?<h>[a-z0-9][a-z0-9.-]*[a-z0-9])(:80)?$" $h;
        "~^(?<h>[a-z0-9][a-z0-9.-]*[a-z0-9]):(?<p>[0-9]+)$" ${{h}}_$p;
        default "-";
    }}
    upstream pkgcache_workers {{
        hash {authority}$request_uri consistent;
{workers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{t.nginx_port};
{f"        listen unix:{t.nginx_socket};" + chr(10) if t.nginx_socket else ""}        root {t.published};
        error_page 418 = @workers;
        location / {{
            if ($pkgcache_plain = 0) {{ return 418; }}
            if ($pkgcache_bare = 0) {{ return 418; }}
            # a refreshed index of this origin is being checked for stale copies: the workers wait for it
            if (-d $document_root/$pkgcache_origin/{HOLD}) {{ return 418; }}
            try_files /$pkgcache_origin$uri @workers;
            add_header X-Cache HIT always;
            access_log {t.front_log} pkgcache_hit;
        }}
        # a miss a worker asked nginx to fetch: streamed to the client and stored whole in the landing folder
        location ~ "^{FETCH_PREFIX.replace('.', '[.]')}(?<pkgcache_token>[0-9a-f]{{32}})/(?<pkgcache_addr>[0-9a-f.:\\[\\]]+)/(?<pkgcache_host>[^/]+)$" {{
            internal;
            # only a download a live worker granted, to the address it checked (tier/grants.py)
            if (!-f {t.grants}/$pkgcache_token/$pkgcache_addr/$pkgcache_host) {{
                access_log /dev/stderr pkgcache_refused;
                return 403;
            }}
            # a connect refused or reset before an answer: asked once more, as a client going direct retries
            error_page 502 = {FETCH_AGAIN};
{fetch}        }}
        location {FETCH_AGAIN} {{
{fetch}        }}
        location ~ /\\.pkgcache {{ return 418; }}
        location {HIT_LOCATION} {{
            try_files /$pkgcache_origin$uri =404;
            add_header X-Cache HIT always;
            access_log {t.front_log} pkgcache_hit;
        }}
        location @workers {{
            proxy_pass http://pkgcache_workers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {authority};
            proxy_set_header X-Forwarded-For $http_x_forwarded_for;
            proxy_set_header {ENGINE} $pkgcache_engine;
            # a worker sends only its own X-Accel-Redirect (proxy/boundary.py); nothing else of this kind is obeyed
            proxy_ignore_headers {" ".join(ACCEL[1:])};
            proxy_buffering off;
            proxy_buffer_size 256k;  # a streamed miss moves in large reads, not 4 KiB ones
            proxy_buffers 8 256k;
            proxy_busy_buffers_size 512k;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
