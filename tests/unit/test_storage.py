"""The store's defences, on a real directory: links never followed, live partials only, sweep, reconcile."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from pkgcache_suite.storage import CacheStore, reconcile, sweep_partials



def test_partial_is_followed_only_while_its_writer_holds_it(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    w = store.writer("h/x.deb", "http://h/x.deb", "immutable")
    w.begin({"url": "http://h/x.deb", "length": None, "headers": []})
    header = store.read_partial_header("h/x.deb")
    assert header is not None and header["inode"] == os.fstat(w.fd).st_ino
    fd = store.open_live_partial("h/x.deb", header)
    assert fd is not None
    os.close(fd)
    fcntl.flock(w.fd, fcntl.LOCK_UN)  # as if its writer had died
    assert store.open_live_partial("h/x.deb", header) is None
    assert store.open_live_partial("h/x.deb", {**header, "inode": -1}) is None
    w.abort()


def test_sweep_removes_dead_leftovers_and_links_but_not_live_downloads(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    live = store.writer("h/live.deb", "u", "immutable")
    live.begin({"url": "u", "length": None, "headers": []})
    partial = tmp_path / "c" / ".pkgcache" / "partial"
    for name in ("dead.part", "dead.json", "x.json.tmp"):
        (partial / name).write_bytes(b"")
    (partial / "link.part").symlink_to(tmp_path / "elsewhere")
    old = time.time() - 60
    for p in partial.iterdir():
        os.utime(p, (old, old), follow_symlinks=False)
    sweep_partials(store)
    assert sorted(p.name for p in partial.iterdir()) == sorted([live.part.name, live.header_file.name])
    assert live.part.exists()
    live.abort()


def test_reconcile_indexes_vouched_bodies_and_removes_the_rest(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    good = b"vouched for"
    for key, data in (("h/a.deb", good), ("h/b.deb", b"nobody knows me")):
        p = tmp_path / "c" / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    store.record_refs("h/dists/x/Packages", [("h/a.deb", len(good), hashlib.sha256(good).hexdigest())])
    counts = reconcile(store)
    assert counts == {"indexed": 1, "removed": 1, "forgotten": 0}
    assert store.lookup("h/a.deb") is not None and not (tmp_path / "c" / "h/b.deb").exists()


def test_private_files_are_never_written_through_links(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    store.lock_path("k").symlink_to(victim)
    lock = store.try_lock("k")
    assert lock is not None
    lock.release()
    assert victim.read_bytes() == b"keep" and not store.lock_path("k").is_symlink()


def _commit(store: CacheStore, key: str, data: bytes, kind: str = "volatile") -> None:
    from pkgcache_suite.storage.entry import Entry

    p = store.root / key
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    store.put_entry(Entry(key=key, url="http://" + key, kind=kind, length=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), fetched=time.time()))


def test_a_by_hash_name_finds_its_plain_copy_by_digest_and_nothing_else(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    d = "h/debian/dists/s/main/binary-amd64"
    xz, gz = b"the xz index", b"the gz index"
    _commit(store, f"{d}/Packages.xz", xz)
    _commit(store, f"{d}/Packages.gz", gz)
    sha = hashlib.sha256(gz).hexdigest()
    found = store.same_bytes_beside(f"{d}/by-hash/SHA256/{sha}", sha.upper())
    assert found is not None and found.key == f"{d}/Packages.gz"
    assert store.same_bytes_beside(f"{d}/by-hash/SHA256/{'0' * 64}", "0" * 64) is None
    assert store.same_bytes_beside(f"{d}/Packages.xz", hashlib.sha256(xz).hexdigest()) is None  # not by-hash
    # a planted link beside the indexes is never followed, a body that changed under its entry never matches
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    (store.root / d / "Planted").symlink_to(outside)
    secret = hashlib.sha256(b"secret").hexdigest()
    assert store.same_bytes_beside(f"{d}/by-hash/SHA256/{secret}", secret) is None
    (store.root / d / "Packages.gz").write_bytes(b"changed index")
    assert store.same_bytes_beside(f"{d}/by-hash/SHA256/{sha}", sha) is None
    # a folder that escapes the root through a link is refused
    (store.root / "h2").symlink_to(tmp_path)
    assert store.same_bytes_beside(f"h2/debian/by-hash/SHA256/{sha}", sha) is None
