"""Transparent mode for real (network namespace + iptables redirect) and HTTPS: tunnelled by default,
intercepted and cached for listed hosts."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.proxy import Proxy, wait_for
from support.origin import Origin

DEB = "/debian/pool/main/a/alpha/alpha_1.0_all.deb"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """A client host in its own network namespace, wired to this one by a veth pair; nothing leaves the machine."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        pytest.fail("the transparent-mode test needs root, iproute2 and iptables (.ci/run installs them)")
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"pkgc{tag}", f"vh{tag}", f"vc{tag}"
    host_ip, client_ip = "10.213.9.1", "10.213.9.2"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{client_ip}/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", host_ip)
        yield ns, host_if, host_ip
    finally:
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", host_if, check=False)


@pytest.mark.parametrize("firewall", ["iptables", "nftables"])
def test_transparent_mode_as_the_recipe_says(netns, start_proxy, tmp_path: Path, firewall: str) -> None:
    """recipes/transparent.md as written: its mitmdump line and its iptables or nftables redirect, for the
    client's interface and the origin's port."""
    from support.recipes import block

    ns, host_if, host_ip = netns
    (tmp_path / "origin").mkdir()
    origin = Origin(tmp_path / "origin", host=host_ip).start()
    body = os.urandom(200_000)
    origin.put(DEB, body)
    start = block("transparent.md", 0).split()
    args = start[start.index("addons/pkgcache.py") + 1:]
    args = [host_ip if a == "192.0.2.1" else "0" if a == "8080" else a for a in args]
    proxy = start_proxy(*args)

    def ours(text: str) -> str:
        return (text.replace("lan0", host_if).replace("dport 80", f"dport {origin.port}")
                .replace("8080", str(proxy.port)).replace("table ip pkgcache", f"table ip pkgcache{ns[-6:]}"))

    if firewall == "iptables":
        line = ours(next(ln for ln in block("transparent.md", 1).splitlines() if ln.startswith("iptables")))
        sh(*line.split())
        undo = line.replace(" -A ", " -D ").split()
    else:
        (tmp_path / "pkgcache.nft").write_text(ours(block("transparent.md", 2)))
        sh("nft", "-f", str(tmp_path / "pkgcache.nft"))
        undo = ["nft", "delete", "table", "ip", f"pkgcache{ns[-6:]}"]
    try:
        outs = []
        for _ in range(2):
            r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sS", "-D", "-", "-o", str(tmp_path / "out"),
                                f"http://{host_ip}:{origin.port}{DEB}"], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr + proxy.log_text()
            assert (tmp_path / "out").read_bytes() == body
            outs.append(r.stdout.lower())
    finally:
        sh(*undo, check=False)
        origin.stop()
    assert "x-cache: miss" in outs[0] and "x-cache: hit" in outs[1]
    assert origin.count(DEB) == 1
    assert "transparent proxy listening" in proxy.log_text().lower()


@pytest.fixture
def tls_origin(tmp_path: Path) -> Iterator[tuple[Origin, Path]]:
    cert, key = tmp_path / "origin-cert.pem", tmp_path / "origin-key.pem"
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
       "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    (tmp_path / "tls-origin").mkdir()
    o = Origin(tmp_path / "tls-origin", tls=(cert, key)).start()
    o.put(DEB, b"package over https")
    yield o, cert
    o.stop()


def _curl(proxy: Proxy, url: str, cacert: Path) -> tuple[int, str, bytes]:
    r = subprocess.run(["curl", "-sS", "-x", proxy.url, "--cacert", str(cacert), "-D", "-", url],
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(errors="replace").lower(), r.stdout


def test_https_is_tunnelled_untouched_by_default(tls_origin, start_proxy, tmp_path: Path) -> None:
    origin, cert = tls_origin
    proxy = start_proxy("--set", f"confdir={tmp_path / 'mitm'}")
    for _ in range(2):
        rc, head, _ = _curl(proxy, origin.base + DEB, cert)  # trusting only the origin's own certificate
        assert rc == 0 and "x-cache" not in head
    assert origin.count(DEB) == 2
    said = [ln for ln in proxy.lines if "is tunnelled, not cached" in ln]
    assert len(said) == 1 and "pkgcache_intercept_hosts" in said[0], proxy.log_text()  # once per host
    with proxy.client() as c:
        wait_for(lambda: c.get("http://pkgcache/stats.json").json()["by_host"]
                 .get(f"127.0.0.1:{origin.port}", {}).get("tunnel") == 2, what="the tunnels counted")
        page = c.get("http://pkgcache/").text
    assert "Tunnelled, not cached" in page and f"127.0.0.1:{origin.port}" in page and "recipes/https.md" in page


def test_https_interception_for_listed_hosts_caches(tls_origin, start_proxy, tmp_path: Path) -> None:
    origin, cert = tls_origin
    confdir = tmp_path / "mitm"
    proxy = start_proxy("--set", f"confdir={confdir}", "--set", "pkgcache_intercept_hosts=127.0.0.1",
                        "--set", f"ssl_verify_upstream_trusted_ca={cert}")
    ca = confdir / "mitmproxy-ca-cert.pem"
    wait_for(ca.exists, what="mitmproxy's CA")
    heads = []
    for _ in range(2):
        rc, head, _ = _curl(proxy, origin.base + DEB, ca)  # the client trusts mitmproxy's CA
        assert rc == 0, head
        heads.append(head)
    assert "x-cache: miss" in heads[0] and "x-cache: hit" in heads[1]
    assert origin.count(DEB) == 1
    # apt-cacher-ng's http://HTTPS///host/path form: a plain-HTTP client, an HTTPS upstream, the same cache
    with proxy.client() as c:
        r = c.get(f"http://HTTPS///127.0.0.1:{origin.port}{DEB}")
    assert r.status_code == 200 and r.content == b"package over https" and r.headers["x-cache"] == "HIT"
    assert origin.count(DEB) == 1


def test_intercepted_https_is_served_offline_in_auto_and_on(tls_origin, tmp_path: Path, start_proxy) -> None:
    origin, cert = tls_origin
    index = "/debian/dists/stable/InRelease"
    origin.put(index, b"Suite: stable\n")
    confdir, cache = tmp_path / "mitm", tmp_path / "cache"
    common = ("--set", f"confdir={confdir}", "--set", "pkgcache_intercept_hosts=127.0.0.1",
              "--set", f"ssl_verify_upstream_trusted_ca={cert}")
    proxy = start_proxy(*common, cache_dir=cache)
    ca = confdir / "mitmproxy-ca-cert.pem"
    wait_for(ca.exists, what="mitmproxy's CA")
    bundle = tmp_path / "client-bundle.pem"  # the client's usual trust store, plus pkgcache's CA
    bundle.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes() + b"\n" + ca.read_bytes())
    for path in (DEB, index):
        rc, head, _ = _curl(proxy, origin.base + path, bundle)
        assert rc == 0 and "x-cache: miss" in head, head
    for path in (DEB, index):  # the second run is all hits
        rc, head, _ = _curl(proxy, origin.base + path, bundle)
        assert rc == 0 and re.search(r"x-cache: (hit|revalidated)", head), head
    assert "connection_strategy=lazy" in proxy.log_text()
    origin.stop()  # upstream vanishes: the very next requests are answered as well as later ones
    rc, head, out = _curl(proxy, origin.base + index, bundle)
    assert rc == 0 and "x-cache: stale" in head, head
    rc, head, out = _curl(proxy, origin.base + "/debian/pool/main/f/first/first_1_all.deb", bundle)
    assert rc == 0 and re.search(r"^http/[\d.]+ 404", head, re.M) and b"recorded" in out, head
    proxy.stop()
    for mode in ("auto", "on"):
        proxy = start_proxy(*common, "--set", f"pkgcache_offline={mode}", cache_dir=cache)
        rc, head, out = _curl(proxy, origin.base + DEB, ca)
        assert rc == 0 and "x-cache: hit" in head and out.endswith(b"package over https"), (mode, head)
        rc, head, out = _curl(proxy, origin.base + index, ca)
        assert rc == 0 and "x-cache: stale" in head and out.endswith(b"Suite: stable\n"), (mode, head)
        rc, head, out = _curl(proxy, origin.base + "/debian/pool/main/n/new/new_1_all.deb", ca)
        assert rc == 0 and re.search(r"^http/[\d.]+ 404", head, re.M) and b"recorded" in out, (mode, head)
        proxy.stop()


def test_an_upstream_certificate_that_fails_verification_is_a_tls_error_never_offline(tls_origin, start_proxy,
                                                                                      tmp_path: Path) -> None:
    """Intercepted, with the origin's certificate trusted by nobody: each request says it is a TLS failure,
    the route is never taken for down, and nothing is added to the wanted list."""
    origin, _cert = tls_origin
    confdir = tmp_path / "mitm"
    proxy = start_proxy("--set", f"confdir={confdir}", "--set", "pkgcache_intercept_hosts=127.0.0.1")
    ca = confdir / "mitmproxy-ca-cert.pem"
    wait_for(ca.exists, what="mitmproxy's CA")
    for _ in range(3):
        rc, head, body = _curl(proxy, origin.base + DEB, ca)
        assert rc == 0 and re.search(r"(?m)^http/[0-9.]+ 502", head), head
        assert b"certificate verify failed" in body.lower(), body
        assert b"offline" not in body.lower(), body
    origin.put("/debian/dists/stable/InRelease", b"an index")
    with proxy.client() as c:
        for path in (DEB, "/debian/dists/stable/InRelease") * 2:  # apt-cacher-ng's form, from a plain-HTTP client
            r = c.get(f"http://HTTPS///127.0.0.1:{origin.port}{path}")
            assert r.status_code == 502 and "certificate verify failed" in r.text.lower(), (r.status_code, r.text)
        info = c.get("http://pkgcache/stats.json").json()
    assert info.get("info", {}).get("wanted_urls", 0) == 0, info.get("info")
    assert "offline" not in proxy.log_text().lower() or "went offline" not in proxy.log_text(), proxy.log_text()
    assert not [ln for ln in proxy.lines if "unreachable" in ln.lower() or "is down" in ln.lower()], proxy.log_text()


def test_fetch_trusts_the_ca_it_is_given_or_the_machines(tls_origin, tmp_path: Path) -> None:
    """`pkgcache fetch` over HTTPS: --cacert, SSL_CERT_FILE, else the system store; a TLS failure is said."""
    from pkgcache_suite.stick.datastore import Datastore

    origin, cert = tls_origin
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}

    def fetch(name: str, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        ds, _ = Datastore.open(tmp_path / name / "pkgcache")
        ds.write_wanted([{"url": origin.base + DEB, "first_seen": 0, "count": 1}], {})
        r = subprocess.run(["pkgcache", "fetch", str(ds.root), *args], capture_output=True, text=True, timeout=120,
                           env={**env, **extra})
        return r, ds.root

    r, _ = fetch("plain")
    assert r.returncode == 1 and "certificate verify failed" in r.stdout.lower(), r.stdout + r.stderr
    for name, args, extra in (("cacert", ("--cacert", str(cert)), {}), ("env", (), {"SSL_CERT_FILE": str(cert)})):
        r, root = fetch(name, *args, **extra)
        assert r.returncode == 0, r.stdout + r.stderr
        assert origin.base + DEB in json.loads((root / "manifest.json").read_text())["files"]
    (tmp_path / "not-pem").write_text("not a certificate\n")
    r, _ = fetch("bad", "--cacert", str(tmp_path / "not-pem"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--cacert" in r.stderr, r.stderr
    r = subprocess.run(["pkgcache", "fetch", str(tmp_path / "env")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{tmp_path / 'env' / 'pkgcache'}" in r.stderr, r.stderr  # the stick's root


def test_intercepted_https_trusts_the_machines_ca_store(tls_origin, start_proxy, tmp_path: Path) -> None:
    """No ssl_verify_upstream_trusted_ca given: the CA in SSL_CERT_FILE (the machine's store) vouches for
    upstream, not mitmproxy's own bundle, so a site CA that only the system knows works from the start."""
    origin, cert = tls_origin
    confdir = tmp_path / "mitm"
    proxy = start_proxy("--set", f"confdir={confdir}", "--set", "pkgcache_intercept_hosts=127.0.0.1",
                        env={"SSL_CERT_FILE": str(cert)})
    ca = confdir / "mitmproxy-ca-cert.pem"
    wait_for(ca.exists, what="mitmproxy's CA")
    heads = [_curl(proxy, origin.base + DEB, ca)[1] for _ in range(2)]
    assert "x-cache: miss" in heads[0] and "x-cache: hit" in heads[1], heads
