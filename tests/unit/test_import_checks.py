"""A datastore cannot plant a package the cache's indexes disown by a digest other than SHA-256: an Alpine
package whose control segment is not the APKINDEX's C:, a Maven artifact its cached .sha1 disowns."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pkgcache_suite.indexes.alpine import CHECK_PREFIX
from pkgcache_suite.maintenance.listings import index_refs
from pkgcache_suite.policy.cachekey import key_for_url
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.stick.datastore import Datastore
from pkgcache_suite.stick.importer import import_datastore
from pkgcache_suite.storage import CacheStore
from support.apkrepo import Package, v2_package, v2_repository

BASE = "http://mirror.example/alpine/v3.20/main/x86_64"


def _stick(tmp_path: Path, files: dict[str, bytes]) -> Datastore:
    ds, _ = Datastore.open(tmp_path / "ds")
    manifest = ds.read_manifest()
    for url, body in files.items():
        path = ds.file_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        manifest["files"][url] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "fetched": 1.0}
    ds.write_manifest(manifest)
    return ds


def test_import_checks_control_checksum_and_sha1(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache")
    good, bad = Package("good", "1-r0", {"a": b"a" * 5000}), Package("bad", "1-r0", {"b": b"b" * 5000})
    repo = v2_repository([good, bad])
    index_key = key_for_url(f"{BASE}/APKINDEX.tar.gz")
    path = store.body_path(index_key)
    path.parent.mkdir(parents=True)
    path.write_bytes(repo["APKINDEX.tar.gz"])
    listed = index_refs(store, index_key)
    assert {r.key.rsplit("/", 1)[1] for r in listed} == {good.filename, bad.filename}
    assert all(r.check and r.check.startswith(CHECK_PREFIX) for r in listed)
    store.record_refs(index_key, listed)
    planted = next(apk for i in range(2000)  # other bytes of the listed size: only the checksum tells
                   if len(apk := v2_package(Package("bad", "1-r0", {"b": b"%05d" % i + b"b" * 4995}))[0])
                   == len(repo[bad.filename]) and apk != repo[bad.filename])
    jar = b"a jar"
    jar_url = "http://mirror.example/maven2/org/example/lib/1.0/lib-1.0.jar"
    store.record_refs(key_for_url(jar_url + ".sha1"), [(key_for_url(jar_url), None, None, "sha1:" + "0" * 40)])
    ds = _stick(tmp_path, {f"{BASE}/{good.filename}": repo[good.filename], f"{BASE}/{bad.filename}": planted,
                           jar_url: jar})
    res = import_datastore(store, Classifier(), ds)
    assert res.imported == [f"{BASE}/{good.filename}"]
    assert "control checksum mismatch" in res.rejected[f"{BASE}/{bad.filename}"]
    assert "SHA-1 mismatch" in res.rejected[jar_url]
    assert store.lookup(key_for_url(f"{BASE}/{bad.filename}")) is None
