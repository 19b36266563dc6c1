"""Precaching: plan the packages the selected cached indexes list, and download them through the proxy.

The command (``pkgcache precache``, cli/precache.py) and the report page's action
both use this module; it prints nothing.

Going through a running pkgcache (``--proxy``) means the configured remapping,
targets, failover and single flight all apply, and the proxy stores each file
exactly as a client request would.  Already-cached files are skipped, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass, field

import httpx

from pkgcache_suite.maintenance.model import Ref, all_entries, build_model
from pkgcache_suite.progress import TransferProgress
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


@dataclass(frozen=True)
class Selection:
    """Which cached indexes to precache from: shell patterns on keys or URLs, and/or Debian suite, component and
    architecture, matched on the index's name in its Release, so a by-hash copy (what apt fetches) counts too."""

    patterns: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    archs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.patterns or self.suites or self.components or self.archs)

    def matches(self, key: str, url: str, logical: tuple[str, str] | None, root_url: str | None) -> bool:
        names = [key, url]
        if logical is not None and root_url:
            names.append(f"{root_url}/dists/{logical[0]}/{logical[1]}")
        if self.patterns and not any(fnmatch.fnmatch(n, pat) for n in names for pat in self.patterns):
            return False
        if not (self.suites or self.components or self.archs):
            return True
        if logical is None:
            return False  # suite/component/architecture select Debian indexes only
        suite, name = logical
        parts = name.split("/")
        component, section = (parts[0], parts[1]) if len(parts) > 2 else ("", parts[0])
        arch = "source" if section == "source" else section.removeprefix("binary-")
        return ((not self.suites or any(fnmatch.fnmatch(suite, s) for s in self.suites))
                and (not self.components or component in self.components)
                and (not self.archs or arch in self.archs))


def plan(store: CacheStore, selection: Selection) -> Plan:
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
            if not selection.matches(idx, url, root.index_names.get(idx), root.root_url):
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


async def download(p: Plan, proxy: str, jobs: int, progress: TransferProgress) -> dict[str, str]:
    failed: dict[str, str] = {}
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for url, size in p.urls:
        queue.put_nowait((url, size))
        progress.expect(1, size)
    async with httpx.AsyncClient(proxy=proxy, timeout=60, trust_env=False) as client:
        async def worker() -> None:
            while True:
                url, size = await queue.get()
                try:
                    async with client.stream("GET", url) as r:
                        got = 0
                        async for chunk in r.aiter_raw(1 << 20):
                            got += len(chunk)
                            progress.advance(len(chunk))
                        if r.status_code != 200 or (size >= 0 and got != size):
                            failed[url] = f"HTTP {r.status_code}, {got} of {size} bytes"
                    progress.finished(url, url not in failed, failed.get(url, ""))
                except httpx.HTTPError as e:
                    failed[url] = f"{type(e).__name__}: {e}"
                    progress.finished(url, False, failed[url])
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker(), name=f"pkgcache: precache worker {i}") for i in range(jobs)]
        await queue.join()
        for w in workers:
            w.cancel()
    return failed


def describe(selection: Selection) -> str:
    parts = [*selection.patterns]
    for label, values in (("suite", selection.suites), ("component", selection.components),
                          ("architecture", selection.archs)):
        if values:
            parts.append(f"{label} {','.join(values)}")
    return " ".join(parts)
