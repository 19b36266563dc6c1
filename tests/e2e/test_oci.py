"""Container images, the real client (skopeo) and the reference registry (docker-registry, bearer tokens from
the test's token service), through pkgcache as a registry mirror: cold, warm, offline in auto and on with the
registry gone, blobs checked by digest, and an image stated with `pkgcache want --oci`, fetched with all its
layers in one trip, and imported."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from pkgcache_suite.tier.supervisor import free_port
from support.proxy import Proxy, wait_for
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
    wait_for(lambda: _wanted(ds) == [], timeout=30, what="the import of the fetched image")
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


def _wanted(ds: Path) -> list[str]:
    try:
        return [w["url"] for w in json.loads((ds / "wanted.json").read_text())["wanted"]]
    except FileNotFoundError:
        return []
