"""A suite's indexes follow the Release each client was given, at the cache addon's hooks (taddons and tflow,
no sockets): two clients on two Releases each get the Packages theirs names, from the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mitmproxy.test import tflow, tutils

from pkgcache_suite.policy.suites import by_hash
from pkgcache_suite.storage import keep_copy, place_file
from support.hooks import cache_suite

HOST = "mirror.example"
SUITE = "/debian/dists/stable/"
PACKAGES = "main/binary-all/Packages"


def _release(packages: bytes) -> bytes:
    sha = hashlib.sha256(packages).hexdigest()
    return f"Suite: stable\nComponents: main\nSHA256:\n {sha} {len(packages)} {PACKAGES}\n".encode()


def _place(store, tmp_path: Path, path: str, body: bytes, kind: str = "volatile") -> None:
    (tmp_path / "body").write_bytes(body)
    place_file(store, f"{HOST}{path}", f"http://{HOST}{path}", kind, tmp_path / "body", len(body),
               hashlib.sha256(body).hexdigest(), {"last_modified": "Mon, 02 Nov 2026 10:00:00 GMT"})


async def _get(core, path: str, client: str) -> tflow.http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(host=HOST, port=80, path=path))
    f.client_conn.peername = (client, 40000)
    await core.request(f)
    if f.response is not None:
        await core.response(f)
    return f


async def test_each_client_gets_the_packages_its_release_names(tmp_path: Path) -> None:
    old, new = b"Package: alpha\nVersion: 1.0\n", b"Package: alpha\nVersion: 2.0\n"
    with cache_suite(pkgcache_dir=str(tmp_path / "c"), pkgcache_offline="on") as (core, _):
        store = core.storage.store
        _place(store, tmp_path, SUITE + "InRelease", _release(old))
        _place(store, tmp_path, SUITE + PACKAGES, old)
        assert (await _get(core, SUITE + "InRelease", "10.0.0.1")).response.status_code == 200
        # the suite moved on: the old Packages kept by its digest, the new one under the plain name
        plain = f"{HOST}{SUITE}{PACKAGES}"
        assert keep_copy(store, store.lookup(plain), by_hash(plain, hashlib.sha256(old).hexdigest()),
                         by_hash(f"http://{plain}", hashlib.sha256(old).hexdigest()), "immutable")
        _place(store, tmp_path, SUITE + PACKAGES, new)
        _place(store, tmp_path, SUITE + "InRelease", _release(new))
        assert (await _get(core, SUITE + "InRelease", "10.0.0.2")).response.status_code == 200
        for client, body in (("10.0.0.1", old), ("10.0.0.2", new), ("10.0.0.1", old)):
            f = await _get(core, SUITE + PACKAGES, client)
            assert f.response is not None and f.response.status_code == 200, client
            assert f.response.content == body and f.response.headers["x-cache"] == "HIT", client
        # a client the cache never gave a Release: answered as usual (offline here: the cached copy)
        f = await _get(core, SUITE + PACKAGES, "10.0.0.3")
        assert f.response is not None and f.response.content == new
