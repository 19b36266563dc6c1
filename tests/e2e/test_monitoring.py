"""Monitoring through the report host: Prometheus metrics and a health verdict."""

from __future__ import annotations

import os
import shutil

from prometheus_client.parser import text_string_to_metric_families

from support.origin import Origin
from support.proxy import Proxy

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


def test_metrics_count_hits_misses_and_bytes(origin: Origin, proxy: Proxy) -> None:
    origin.put(DEB, b"x" * 1000)
    with proxy.client() as c:
        c.get(origin.base + DEB)
        c.get(origin.base + DEB)
        r = c.get("http://pkgcache/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(r.text) for s in fam.samples}
    key = lambda name, **labels: (name, tuple(sorted(labels.items())))  # noqa: E731
    assert samples[key("pkgcache_requests_total", outcome="hit", **{"class": "immutable"}, repository="")] == 1
    assert samples[key("pkgcache_requests_total", outcome="miss", **{"class": "immutable"}, repository="")] == 1
    assert samples[key("pkgcache_bytes_total", source="upstream", **{"class": "immutable"}, repository="")] == 1000
    assert samples[key("pkgcache_downloads_in_progress")] == 0
    assert samples[key("pkgcache_cache_entries")] == 1 and samples[key("pkgcache_cache_bytes")] == 1000
    assert ("pkgcache_disk_free_bytes", ()) in samples


def test_health_says_unhealthy_when_the_cache_cannot_be_written(proxy: Proxy) -> None:
    with proxy.client() as c:
        r = c.get("http://pkgcache/health")
        assert r.status_code == 200 and r.text.strip() == "ok"
        private = proxy.cache_dir / ".pkgcache"
        mode = private.stat().st_mode
        if os.geteuid() == 0:  # root writes anywhere: take the folder away instead
            shutil.move(private, proxy.cache_dir / "elsewhere")
            private.write_text("")
        else:
            private.chmod(0o500)
        try:
            r = c.get("http://pkgcache/health")
        finally:
            if os.geteuid() == 0:
                private.unlink()
                shutil.move(proxy.cache_dir / "elsewhere", private)
            else:
                private.chmod(mode)
    assert r.status_code == 503 and "cannot be written" in r.text


def test_metrics_and_dashboard_count_by_ecosystem(origin: Origin, proxy: Proxy) -> None:
    """Each ecosystem's files are counted under the name of the shipped rules that know them."""
    import hashlib

    blob = b"a layer"
    files = {DEB: ("debian", b"deb"), "/crates/dem-0.1.0.crate": ("cargo", b"crate"),
             "/mods.example/dem/@v/v0.1.0.zip": ("go", b"zip"),
             "/maven2/org/example/lib/1.0/lib-1.0.jar": ("maven", b"jar"),
             f"/v2/team/app/blobs/sha256:{hashlib.sha256(blob).hexdigest()}": ("oci", blob),
             "/alpine/v3.20/main/x86_64/APKINDEX.tar.gz": ("alpine", b"index")}
    for path, (_, body) in files.items():
        origin.put(path, body)
    with proxy.client() as c:
        for path in files:
            assert c.get(origin.base + path).status_code == 200
        c.get(origin.base + DEB)
        metrics = c.get("http://pkgcache/metrics").text
        page = c.get("http://pkgcache/").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(metrics) for s in fam.samples}

    def n(outcome: str, eco: str) -> float:
        return samples.get(("pkgcache_ecosystem_requests_total", (("ecosystem", eco), ("outcome", outcome))), 0)

    assert n("miss", "debian") == 1 and n("hit", "debian") == 1
    for eco in ("cargo", "go", "maven", "oci", "alpine"):
        assert n("miss", eco) == 1, eco
    assert not any(name == "pkgcache_ecosystem_requests_total" and dict(labels)["ecosystem"] == "other" and v
                   for (name, labels), v in samples.items())
    assert samples[("pkgcache_ecosystem_bytes_total", (("ecosystem", "oci"), ("source", "upstream")))] == len(blob)
    assert "By ecosystem" in page and ">maven<" in page.replace("<td>", ">").replace("</td>", "<")
