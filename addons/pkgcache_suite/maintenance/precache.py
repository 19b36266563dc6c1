"""`pkgcache precache PATTERN...`: download every package the matching cached indexes list, through the proxy.

Going through a running pkgcache (``--proxy``) means the configured remapping,
targets, failover and single flight all apply, and the proxy stores each file
exactly as a client request would.  Already-cached files are skipped, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import fnmatch
import sys
from dataclasses import dataclass, field

import httpx

from pkgcache_suite.offline.fetch import Reporter
from pkgcache_suite.maintenance.model import Ref, all_entries, build_model
from pkgcache_suite.storage import CacheStore


@dataclass
class Plan:
    urls: list[tuple[str, int]] = field(default_factory=list)  # (url, size)
    indexes: list[str] = field(default_factory=list)
    cached: int = 0
    no_url: int = 0

    @property
    def bytes(self) -> int:
        return sum(s for _, s in self.urls if s > 0)


def plan(store: CacheStore, patterns: list[str]) -> Plan:
    entries = dict(all_entries(store))
    model = build_model(store, entries)
    p = Plan()
    seen: set[str] = set()
    for root in model.roots.values():
        by_index: dict[str, list[tuple[str, Ref]]] = {}
        for key, ref in root.refs.items():
            by_index.setdefault(ref.index, []).append((key, ref))
        for idx in sorted(by_index):
            url = entries[idx].url if idx in entries else ""
            if not any(fnmatch.fnmatch(idx, pat) or fnmatch.fnmatch(url, pat) for pat in patterns):
                continue
            p.indexes.append(idx)
            for key, ref in by_index[idx]:
                if key in seen:
                    continue
                seen.add(key)
                if key in entries and store.lookup(key) is not None:
                    p.cached += 1
                    continue
                u = root.url_for(key)
                if u is None:
                    p.no_url += 1
                    continue
                p.urls.append((u, ref.size))
    return p


async def download(p: Plan, proxy: str, jobs: int, tty: bool) -> dict[str, str]:
    failed: dict[str, str] = {}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for item in p.urls:
        queue.put_nowait(item)
    with Reporter(tty) as rep:
        rep.add_total(len(p.urls))
        async with httpx.AsyncClient(proxy=proxy, timeout=60, trust_env=False) as client:
            async def worker() -> None:
                while True:
                    url, size = await queue.get()
                    task = rep.start(url, size)
                    try:
                        async with client.stream("GET", url) as r:
                            got = 0
                            async for chunk in r.aiter_raw(1 << 20):
                                got += len(chunk)
                                rep.advance(task, len(chunk))
                            if r.status_code != 200 or (size >= 0 and got != size):
                                failed[url] = f"HTTP {r.status_code}, {got} of {size} bytes"
                                rep.finish(task, url, "failed")
                            else:
                                rep.finish(task, url, "ok")
                    except httpx.HTTPError as e:
                        failed[url] = f"{type(e).__name__}: {e}"
                        rep.finish(task, url, "failed")
                    finally:
                        queue.task_done()

            workers = [asyncio.create_task(worker(), name=f"pkgcache: precache worker {i}") for i in range(jobs)]
            await queue.join()
            for w in workers:
                w.cancel()
    return failed


def run_precache(store: CacheStore, patterns: list[str], proxy: str, jobs: int, estimate: bool) -> int:
    p = plan(store, patterns)
    if not p.indexes:
        print(f"pkgcache precache: no cached index matches {' '.join(patterns)}", file=sys.stderr)
        return 1
    print(f"pkgcache precache: {len(p.indexes)} indexes list {len(p.urls)} files to fetch "
          f"({p.bytes} bytes); {p.cached} already cached" + (f"; {p.no_url} without a known URL" if p.no_url else ""))
    if estimate or not p.urls:
        return 0
    failed = asyncio.run(download(p, proxy, jobs, sys.stderr.isatty()))
    for url, why in sorted(failed.items()):
        print(f"  FAILED {url}: {why}")
    print(f"pkgcache precache: {len(p.urls) - len(failed)} fetched, {len(failed)} failed")
    from pkgcache_suite.maintenance.tasks import record_run

    record_run(store, "precache", {"patterns": patterns, "fetched": len(p.urls) - len(failed), "failed": len(failed)})
    return 1 if failed else 0
