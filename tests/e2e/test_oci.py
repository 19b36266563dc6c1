"""Container images, the real client (skopeo) and the reference registry (docker-registry, bearer tokens from
the test's token service), through pkgcache as a registry mirror: cold, warm, offline in auto and on with the
registry gone, blobs checked by digest, and an image stated with `pkgcache want --oci`, fetched with all its
layers in one trip, and imported."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pkgcache_suite.tier.supervisor import free_port
from support.proxy import Proxy, wait_for, wanted_urls
from support.recipes import block
from support.registry import MANIFEST_TYPES, Registry, TokenServer, oci_layout, push, skopeo

LAYERS = [{"hello.txt": b"hello from the test's registry\n"}, {"data.bin": bytes(range(256)) * 2000}]


@pytest.fixture
def registry(tmp_path: Path):
    tokens = TokenServer(tmp_path).start()
    reg = Registry(tmp_path, tokens).start()
    yield reg
    reg.stop()
    tokens.stop()


def _conf(tmp_path: Path, reg: Registry) -> Path:
    conf = tmp_path / "pkgcache.conf"
    conf.write_text(block("containers.md", 0).replace("https://registry.example", f"http://{reg.host}"))
    return conf


def _start(start_proxy, cache: Path, conf: Path, *extra: str) -> tuple[Proxy, int]:
    pport, mport = free_port(), free_port()
    p = start_proxy("--set", f"pkgcache_conf={conf}", "--mode", f"regular@127.0.0.1:{pport}",
                    "--mode", f"reverse:http://127.0.0.1:9@127.0.0.1:{mport}", *extra, cache_dir=cache)
    wait_for(lambda: len(p.ports) == 2, what="both listeners")
    return p, mport


def pull(mport: int, ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """The recipe's skopeo line, as written, into a fresh OCI layout (skopeo keeps no cache of its own)."""
    line = block("containers.md", 1).strip().replace("PROXY-HOST:3142", f"127.0.0.1:{mport}")
    args = line.split()[1:]
    args[-2], args[-1] = f"docker://127.0.0.1:{mport}/{ref}", f"oci:{dest}:{ref.rsplit(':', 1)[1]}"
    return skopeo(*args)


def _layers_in(dest: Path) -> set[bytes]:
    return {p.read_bytes() for p in (dest / "blobs/sha256").iterdir()}


def test_oci_mirror_cold_warm_offline_and_one_trip(registry: Registry, start_proxy, tmp_path: Path) -> None:
    digests = oci_layout(tmp_path / "img", "1", LAYERS)
    push(tmp_path / "img", "1", registry, "team/app")
    other = oci_layout(tmp_path / "img2", "2", [{"other.txt": b"another image\n"}, {"big.bin": b"z" * 300_000}])
    push(tmp_path / "img2", "2", registry, "team/other")
    conf, cache = _conf(tmp_path, registry), tmp_path / "cache"
    proxy, mport = _start(start_proxy, cache, conf)
    for run in ("cold", "warm"):
        asked = len(registry.tokens.asked)
        r = pull(mport, "team/app:1", tmp_path / f"out-{run}")
        assert r.returncode == 0, (run, r.stdout + r.stderr, proxy.log_text()[-3000:])
        assert _layers_in(tmp_path / f"out-{run}") >= _layers_in(tmp_path / "img")
        assert len(registry.tokens.asked) > asked  # each pull asks the token service itself: nothing cached
    for role in ("layer0", "layer1", "config"):  # blobs: from the registry once
        assert registry.count(f"/v2/team/app/blobs/{digests[role]}") == 1, (role, registry.requests())
    tag = [s for m, p, s in registry.requests() if m in ("GET", "HEAD") and p == "/v2/team/app/manifests/1"]
    assert len(tag) >= 2 and 304 in tag or tag.count(200) >= 2  # the tag: asked again, with the client's token
    blob = f"http://127.0.0.1:{mport}/v2/team/app/blobs/{digests['layer1']}"
    with httpx.Client(trust_env=False, timeout=30) as c:
        whole = c.get(blob)
        assert whole.headers["x-cache"] == "HIT" and whole.headers["docker-content-digest"] == digests["layer1"]
        part = c.get(blob, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        # without a token the registry refuses the tag, and so does the cache: its copy is not handed out
        anon = c.get(f"http://127.0.0.1:{mport}/v2/team/app/manifests/1", headers={"Accept": MANIFEST_TYPES[0]})
        assert anon.status_code == 401 and "bearer" in anon.headers["www-authenticate"].lower()
    _corrupt_blob_is_never_stored(registry, mport, proxy, tmp_path)
    proxy.stop()
    registry.stop()
    for mode in ("auto", "on"):  # the registry is gone
        p, mport = _start(start_proxy, cache, conf, "--set", f"pkgcache_offline={mode}")
        r = pull(mport, "team/app:1", tmp_path / f"out-offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-3000:])
        assert _layers_in(tmp_path / f"out-offline-{mode}") >= _layers_in(tmp_path / "img")
        p.stop()
    # an image nobody pulled: stated offline, fetched with all its layers in one trip, imported, pulled
    ds = tmp_path / "ds"
    ds.mkdir()
    p, mport = _start(start_proxy, cache, conf, "--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={ds}")
    ref = f"http://{registry.host}/team/other:2"
    w = subprocess.run(["pkgcache", "want", "--proxy", p.url, "--oci", ref], capture_output=True, text=True,
                       timeout=60)
    assert w.returncode == 0, w.stdout + w.stderr
    registry.start()
    f = subprocess.run(["pkgcache", "fetch", str(ds)], capture_output=True, text=True, timeout=300)
    assert f.returncode == 0, f.stdout + f.stderr
    registry.stop()
    wait_for(lambda: wanted_urls(ds) == [], timeout=30, what="the import of the fetched image")
    r = pull(mport, "team/other:2", tmp_path / "out-other")
    assert r.returncode == 0, (r.stdout + r.stderr, p.log_text()[-3000:])
    assert _layers_in(tmp_path / "out-other") >= _layers_in(tmp_path / "img2")
    for role in ("layer0", "layer1", "config"):
        assert registry.count(f"/v2/team/other/blobs/{other[role]}") == 1


def _corrupt_blob_is_never_stored(registry: Registry, mport: int, proxy: Proxy, tmp_path: Path) -> None:
    """A registry that serves other bytes under a blob's digest (a damaged store): passed on, never stored."""
    bad = oci_layout(tmp_path / "bad", "1", [{"x.bin": b"y" * 50_000}])
    push(tmp_path / "bad", "1", registry, "team/bad")
    digest = bad["layer0"]
    data = registry.work / "storage/docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
    body = bytearray(data.read_bytes())
    body[-10] ^= 0xFF  # the same size, other bytes
    data.write_bytes(bytes(body))
    token = registry.tokens.token("repository:team/bad:pull")
    url = f"http://127.0.0.1:{mport}/v2/team/bad/blobs/{digest}"
    with httpx.Client(trust_env=False, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(2):
            r = c.get(url)
            assert r.headers["x-cache"] == "MISS" and hashlib.sha256(r.content).hexdigest() != digest[7:]
    assert registry.count(f"/v2/team/bad/blobs/{digest}") == 2
    assert "SHA-256 mismatch" in proxy.log_text()


@pytest.fixture
def address() -> Iterator[str]:
    """An address of this machine that is not loopback (a veth pair's end): Go's HTTP client, skopeo's, sends
    nothing for a loopback address through a proxy."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("the interception test needs root and iproute2 (.ci/run installs them)")
    tag = secrets.token_hex(3)
    here, there, ip = f"vo{tag}", f"vp{tag}", "10.213.11.1"
    subprocess.run(["ip", "link", "add", here, "type", "veth", "peer", "name", there], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{ip}/24", "dev", here], check=True)
        for dev in (here, there):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        yield ip
    finally:
        subprocess.run(["ip", "link", "del", here], check=False)


def test_oci_through_https_interception(address: str, start_proxy, tmp_path: Path) -> None:
    """Clients keep the registry's name and set HTTPS_PROXY: pkgcache intercepts, caches and serves offline."""
    cert, key = tmp_path / "reg-cert.pem", tmp_path / "reg-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={address}", "-addext", f"subjectAltName=IP:{address}"],
                   check=True, capture_output=True)
    tokens = TokenServer(tmp_path).start()
    registry = Registry(tmp_path, tokens, address=address, tls=(cert, key)).start()
    try:
        digests = oci_layout(tmp_path / "img", "1", LAYERS)
        r = skopeo("copy", "--dest-cert-dir", str(_cert_dir(tmp_path / "push-certs", cert)), "--dest-creds",
                   "tester:secret", f"oci:{tmp_path / 'img'}:1", f"docker://{registry.host}/team/app:1")
        assert r.returncode == 0, r.stdout + r.stderr
        confdir, cache = tmp_path / "mitm", tmp_path / "cache"
        common = ("--set", f"confdir={confdir}", "--set", f"pkgcache_intercept_hosts={address}",
                  "--set", f"ssl_verify_upstream_trusted_ca={cert}")
        proxy = start_proxy(*common, cache_dir=cache)
        certs = _cert_dir(tmp_path / "client-certs", confdir / "mitmproxy-ca-cert.pem")
        env = {**{k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")},
               "HTTPS_PROXY": proxy.url}
        for run in ("cold", "warm"):
            r = skopeo("copy", "--src-cert-dir", str(certs), f"docker://{registry.host}/team/app:1",
                       f"oci:{tmp_path / f'out-{run}'}:1", env=env)
            assert r.returncode == 0, (run, r.stdout + r.stderr, proxy.log_text()[-3000:])
        for role in ("layer0", "layer1", "config"):
            assert registry.count(f"/v2/team/app/blobs/{digests[role]}") == 1, role
        proxy.stop()
        registry.stop()
        for mode in ("auto", "on"):
            p = start_proxy(*common, "--set", f"pkgcache_offline={mode}", cache_dir=cache)
            r = skopeo("copy", "--src-cert-dir", str(certs), f"docker://{registry.host}/team/app:1",
                       f"oci:{tmp_path / f'out-offline-{mode}'}:1", env={**env, "HTTPS_PROXY": p.url})
            assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-3000:])
            assert _layers_in(tmp_path / f"out-offline-{mode}") >= _layers_in(tmp_path / "img")
            p.stop()
    finally:
        registry.stop()
        tokens.stop()


def _cert_dir(where: Path, ca: Path) -> Path:
    """A folder as containers' tools read one: the CA to trust as ca.crt."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, where / "ca.crt")
    return where
