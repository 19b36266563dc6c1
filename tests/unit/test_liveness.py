"""Whether a cache needs its check at start: registrations of serving processes, held by a lock while they run;
and the child process that carries cache-sized work off the proxy's event loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from pkgcache_suite.maintenance import offloop
from pkgcache_suite.storage import CacheStore
from pkgcache_suite.storage.entry import Entry
from pkgcache_suite.storage.liveness import Liveness

HOLD = """
import sys, time
sys.path.insert(0, {addons!r})
from pathlib import Path
from pkgcache_suite.storage.liveness import Liveness
Liveness(Path({private!r})).register()
print("registered", flush=True)
time.sleep(60)
"""


def test_a_new_cache_is_checked_once_then_only_after_a_process_died(tmp_path: Path) -> None:
    first = Liveness(tmp_path)
    assert first.register() is True  # never seen by this version
    assert first.dead() == []
    first.checked([])
    first.unregister()
    clean = Liveness(tmp_path)
    assert clean.register() is False  # the last one stopped cleanly
    # another process registers and is killed mid-run
    addons = str(Path(__file__).resolve().parents[2] / "addons")
    p = subprocess.Popen([sys.executable, "-c", HOLD.format(addons=addons, private=str(tmp_path))],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "registered"
    assert clean.dead() == []  # alive: its lock is held
    p.kill()
    p.wait()
    dead = clean.dead()
    assert len(dead) == 1
    later = Liveness(tmp_path)
    assert later.register() is True
    later.checked(dead)
    clean.unregister()
    later.unregister()
    assert Liveness(tmp_path).register() is False
    assert [n for n in os.listdir(tmp_path / "running") if not n.startswith(".")] != []  # the last one's own


def test_a_check_that_never_ended_is_done_again(tmp_path: Path) -> None:
    a = Liveness(tmp_path)
    assert a.register() is True
    a.unregister()  # stopped before its check was through
    assert Liveness(tmp_path).register() is True


def _refreshed_index(tmp_path: Path) -> tuple[CacheStore, str]:
    """A cache whose refreshed Packages lists a.deb with other bytes than the cached copy, and b.deb."""
    store = CacheStore(tmp_path / "c")
    good, stale = b"the new bytes", b"the old bytes"
    index = "h/debian/dists/s/main/binary-amd64/Packages"
    body = (f"Package: a\nFilename: pool/a.deb\nSize: {len(good)}\nSHA256: {hashlib.sha256(good).hexdigest()}\n\n"
            "Package: b\nFilename: pool/b.deb\nSize: 3\nSHA256: " + "0" * 64 + "\n\n").encode()
    for key, data in ((index, body), ("h/debian/pool/a.deb", stale)):
        p = store.root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        store.put_entry(Entry(key=key, url="http://" + key, kind="volatile" if key == index else "immutable",
                              length=len(data), sha256=hashlib.sha256(data).hexdigest(), fetched=time.time()))
    return store, index


def test_an_index_is_checked_and_recorded_in_a_child_process(tmp_path: Path) -> None:
    store, index = _refreshed_index(tmp_path)

    async def run() -> dict:
        job = await offloop.start("index", store.root, index)
        first = await job.step()
        await job.finish()
        return first

    first = asyncio.run(run())
    assert first == {"step": "checked", "listed": 2, "dropped": ["h/debian/pool/a.deb"]}
    assert store.lookup("h/debian/pool/a.deb") is None  # the re-published file's old copy is gone
    assert store.expected("h/debian/pool/b.deb") == (3, "0" * 64)  # what the index lists is recorded


def test_a_failing_child_says_why(tmp_path: Path) -> None:
    CacheStore(tmp_path / "c").close()

    async def run() -> str:
        job = await offloop.start("index", tmp_path / "c", "h/debian/dists/s/main/binary-amd64/Packages")
        try:
            await job.step()
        except offloop.OffLoopError as e:
            return str(e)
        return "no error"

    why = asyncio.run(run())
    assert "exited with status 1" in why and "No such file" in why, why


def test_without_a_child_process_the_same_check_runs_on_a_thread(tmp_path: Path, monkeypatch) -> None:
    from pkgcache_suite.transfer.stalecopies import StaleCopies

    store, index = _refreshed_index(tmp_path)

    async def no_child(*_args: object) -> None:
        raise OSError("no processes left")

    monkeypatch.setattr(offloop, "start", no_child)

    async def run() -> None:
        stale = StaleCopies(lambda: store)
        stale.index_stored(index)
        assert stale.busy_for("h/debian/pool/a.deb")
        await stale._task

    asyncio.run(run())
    assert store.lookup("h/debian/pool/a.deb") is None
    assert store.expected("h/debian/pool/b.deb") == (3, "0" * 64)
    assert not store.published.held("h")
