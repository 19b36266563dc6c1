"""Work whose cost grows with the cache or with an index, run in a child process, never on the request path.

Reading a real suite's Packages (60,000 stanzas) or walking a cache of a
million files takes seconds of CPU.  On a thread of the proxy it would hold
the interpreter lock that every hit needs, so it runs in a child process of
its own, at a lower CPU priority, which reports on its standard output, one
JSON line per step: the proxy acts on the first step (a refreshed index is
checked: hits may go on) while the rest (recording what it lists) finishes
in the child.  Run as ``python -m pkgcache_suite.maintenance.offloop JOB ROOT [KEY]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("pkgcache")

NICE = 10
LINE_LIMIT = 1 << 24  # a step's report (the names of dropped copies) fits in 16 MiB


class OffLoopError(RuntimeError):
    """The child failed; its last lines of standard error say why."""


class Job:
    """One child process: its steps are read as they come, its log lines relayed, its end awaited apart."""

    def __init__(self, proc: asyncio.subprocess.Process, what: str) -> None:
        self.proc, self.what = proc, what
        self.last_error = ""
        self._relay = asyncio.get_running_loop().create_task(self._relay_log(), name=f"pkgcache: log of {what}")

    async def _relay_log(self) -> None:
        """The child's log lines become the proxy's (and its stderr never fills up and blocks it)."""
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.last_error = line
                log.info("%s", line)

    async def step(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise OffLoopError(f"{self.what}: {await self._why()}")
        return json.loads(line)

    async def _why(self) -> str:
        code = await self.proc.wait()
        await self._relay
        return f"exited with status {code}" + (f": {self.last_error}" if self.last_error else "")

    async def finish(self) -> None:
        """The remaining steps, read and discarded; an error is raised with the child's own words."""
        assert self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass
        if await self.proc.wait() != 0:
            raise OffLoopError(f"{self.what}: {await self._why()}")
        await self._relay

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def start(job: str, root: Path, *args: str) -> Job:
    """Start job in a child process (the same interpreter, the suite on its path)."""
    here = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pkgcache_suite.maintenance.offloop", job, str(root), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, limit=LINE_LIMIT)
    return Job(proc, f"{job} {' '.join(args)}".strip())


async def run(job: str, root: Path, *args: str) -> dict[str, Any]:
    """Run a one-step job to its end: its step, or OffLoopError with the child's own words."""
    child = await start(job, root, *args)
    try:
        step = await child.step()
        await child.finish()
    finally:
        child.kill()
    return step


# -- the child's side ------------------------------------------------------------------


def _say(**step: Any) -> None:
    sys.stdout.write(json.dumps(step) + "\n")
    sys.stdout.flush()


def _index(store: Any, key: str) -> None:
    """A refreshed package index: drop the copies it lists with other bytes (step 1), then record what it
    lists for the checks on commit (step 2)."""
    from pkgcache_suite.maintenance.tasks import take_in_index

    take_in_index(store, key, lambda listed, dropped: _say(step="checked", listed=len(listed), dropped=dropped))
    _say(step="recorded")


def _reconcile(store: Any) -> None:
    from pkgcache_suite.maintenance.tasks import record_all_refs
    from pkgcache_suite.storage import reconcile

    if not store.refs_rebuilt():
        record_all_refs(store)
        store.mark_refs_rebuilt()
    _say(step="reconciled", counts=reconcile(store))


def _count(store: Any) -> None:
    from pkgcache_suite.storage.totals import count_untagged

    _say(step="counted", entries=count_untagged(store.index))


def _evict(store: Any, max_size: str) -> None:
    from pkgcache_suite.maintenance.evict import enforce_max_size

    res = enforce_max_size(store, int(max_size))
    _say(step="evicted", size_before=res.size_before, freed=res.freed, deleted=len(res.deleted))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)  # relayed by the proxy
    try:
        os.nice(NICE)
    except OSError:
        pass
    from pkgcache_suite.storage import CacheStore

    job, root, *rest = argv
    store = CacheStore(Path(root))
    try:
        if job == "index" and len(rest) == 1:
            _index(store, rest[0])
        elif job == "reconcile" and not rest:
            _reconcile(store)
        elif job == "count" and not rest:
            _count(store)
        elif job == "evict" and len(rest) == 1 and rest[0].isdigit():
            _evict(store, rest[0])
        else:
            print(f"offloop: unknown job {argv!r}", file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:  # a broken or hostile index, a file gone: one line, not a traceback
        print(f"pkgcache: {' '.join(argv[:1] + rest)}: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
