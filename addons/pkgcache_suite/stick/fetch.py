"""`pkgcache fetch DATASTORE`: download an offline machine's wanted list on a connected machine.

Downloads go into the datastore's files/ folder under the cache's key layout,
several at once (httpx), resuming partial files with Range/If-Range, retrying
transient errors, and recording permanent failures with their reason in the
manifest.  Debian files are checked against the SHA-256 sums of the
Release/Packages indexes at hand, and a fetched InRelease pulls in the indexes
apt will ask for next (only those the clients use; see indexplan); a cargo
index file, a Go module file or a Maven POM pulls in what its client asks
for next (resolve/closures).  Packages
that offline clients stated they want are resolved by apt against the fetched
indexes and downloaded in the same trip (see requested), so a fresh machine
needs one trip to `apt-get update` and `apt-get install`.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from pkgcache_suite.stick.datastore import Datastore, DatastoreError
from pkgcache_suite.indexes.debian import DebianIndex, ReleaseInfo, is_release_url
from pkgcache_suite.resolve import indexplan, rpmmeta
from pkgcache_suite.resolve.closures import Closures
from pkgcache_suite.signing.policy import detached_suffix
from pkgcache_suite.wanted import requested
from pkgcache_suite.stick.bearer import BearerChallenge
from pkgcache_suite.stick.resumable import resume_headers, total_size
from pkgcache_suite.wanted.wantspec import WantRequest
from pkgcache_suite.progress import TransferProgress
from pkgcache_suite.trust import client_context

PERMANENT = {400, 401, 403, 404, 405, 410, 451}
CHUNK = 1 << 20


@dataclass
class Outcome:
    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    expanded: list[str] = field(default_factory=list)
    bytes: int = 0
    resolved: dict[str, list[str]] = field(default_factory=dict)  # request id -> package URLs
    unresolved: dict[str, dict[str, str]] = field(default_factory=dict)  # request id -> package -> why
    choices: dict[str, str] = field(default_factory=dict)  # suite -> which indexes were chosen, in words
    fell_back: dict[str, str] = field(default_factory=dict)  # by-hash URL upstream lacks -> plain URL fetched

class Fetcher:
    def __init__(self, ds: Datastore, proxy: str | None = None, jobs: int = 4, retries: int = 3,
                 expand: bool = True, archs: list[str] | None = None, tty: bool | None = None, verbose: bool = False,
                 timeout: float = 30.0, requests: list[WantRequest] | None = None,
                 usage: dict[str, indexplan.Usage] | None = None, everything: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        """tls: whom upstream HTTPS must be vouched for by (default: the machine's CAs, pkgcache_suite/trust.py)."""
        self.tls = tls or client_context()
        self.ds, self.proxy, self.jobs, self.retries, self.expand = ds, proxy, jobs, retries, expand
        self.requests = requests or []
        self.usage = usage or {}
        self.everything = everything
        self.archs = archs or list(dict.fromkeys(a for r in self.requests for a in r.archs)) or None
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.verbose = verbose
        self.summary = ""
        self.timeout = timeout
        self.manifest = ds.read_manifest()
        self.index = DebianIndex()
        self.rpm = rpmmeta.RpmRepos(self.index.known)  # one table of what indexes vouch for
        self.others = Closures()
        self.probed: set[str] = set()  # files a client probes for; their absence is an answer, not a failure
        self.out = Outcome()
        self._queued: set[str] = set()
        self._dirty = False
        self._last_save = 0.0

    # -- indexes ----------------------------------------------------------------

    def _learn(self, url: str) -> list[str]:
        """Read a fetched index; return further URLs to fetch."""
        path = self.ds.file_path(url)
        more: list[str] = []
        signature = [url + suffix] if (suffix := detached_suffix(url.split("?", 1)[0])) else []
        self.probed.update(signature)  # the import checks the index with the signature file beside it
        try:
            if is_release_url(url):
                info = self.index.add_release(url, path)
                if self.expand:
                    more = self._indexes(info)
            elif rpmmeta.is_repomd(url):
                named = self.rpm.add_repomd(url, path)  # vouches for the metadata, expanded or not
                if self.expand:
                    self.probed.update(probes := self.rpm.probes(url))
                    more = named + probes
            elif self.rpm.is_primary(url):
                self.rpm.add_primary(url, path)
            elif self.index.is_packages(url):
                self.index.add_packages(url, path)
            elif self.expand:
                more = self.others.learn(url, path)
        except Exception as e:  # a broken index must not stop the others
            print(f"fetch: cannot parse {url}: {e}", file=sys.stderr)
        return signature + more

    def _indexes(self, info: ReleaseInfo) -> list[str]:
        targets = [t for r in self.requests for t in r.targets]
        if not (self.archs or any(t.base == info.base for t in targets)):
            return []
        urls, why = indexplan.select(info, targets, self.usage.get(info.base), self.archs or [], self.everything)
        self.out.choices[info.base] = why
        return urls

    def _check(self, url: str) -> str | None:
        want = self.index.expected(url)
        rec = self.manifest["files"].get(url)
        if rec is not None and (why := self.others.problem(url, rec["sha256"])):
            return why
        if want is None or rec is None:
            return None
        if (rec["size"], rec["sha256"]) != want:
            return f"checksum mismatch: got size {rec['size']} sha256 {rec['sha256']}, index says {want[0]} {want[1]}"
        return None

    # -- manifest -----------------------------------------------------------------

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._dirty and (force or now - self._last_save > 1.0):
            self.ds.write_manifest(self.manifest)
            self._dirty = False
            self._last_save = now

    def _intact(self, url: str) -> bool:
        rec = self.manifest["files"].get(url)
        if rec is None:
            return False
        return self.ds.intact(url, rec["size"], rec["sha256"])

    # -- downloading ----------------------------------------------------------------

    def _fetched(self, url: str, record: dict[str, Any], new_bytes: int, reporter: TransferProgress) -> None:
        """A file is in the datastore: record it, check it, learn what it names."""
        self.manifest["files"][url] = record
        self.manifest["failed"].pop(url, None)
        self._dirty = True
        self.out.bytes += new_bytes
        problem = self._check(url)
        if problem:
            self._reject(url, problem)
            reporter.finished(url, False, f"rejected: {problem}")
            return
        self.out.fetched.append(url)
        reporter.finished(url, True)
        for more in self._learn(url):
            self._enqueue(more, self.others.headers_for(more), reporter, expanded=True)
        self._save()

    async def _download(self, client: httpx.AsyncClient, url: str, headers: dict[str, str],
                        reporter: TransferProgress) -> None:
        part = self.ds.partial(url)
        last_err = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 8))
            req_headers, have = resume_headers(headers, *part.resume_state())
            try:
                async with client.stream("GET", url, headers=req_headers) as r:
                    if r.status_code == 404 and await self._by_hash_fallback(client, url, reporter):
                        return
                    if r.status_code in PERMANENT:
                        self._fail(url, f"HTTP {r.status_code} {r.reason_phrase}", permanent=True)
                        reporter.finished(url, False, f"HTTP {r.status_code}")
                        return
                    if r.status_code == 416:
                        part.discard()
                        last_err = "HTTP 416 on resume; restarting"
                        continue
                    if r.status_code >= 500 or r.status_code == 429 or r.status_code not in (200, 206):
                        last_err = f"HTTP {r.status_code} {r.reason_phrase}"
                        continue
                    if r.status_code == 206 and have:
                        h, mode = part.digest_so_far(), "ab"
                    else:
                        h, have, mode = hashlib.sha256(), 0, "wb"
                    total = total_size(r)
                    meta = {"etag": r.headers.get("etag"), "last_modified": r.headers.get("last-modified"),
                            "content_type": r.headers.get("content-type")}
                    part.write_validators(meta)
                    if total is not None and url not in self.index.known:
                        reporter.expect(0, total)  # what a Packages index did not tell in advance
                    reporter.advance(have)
                    got = have
                    with part.open(mode) as f:
                        async for chunk in r.aiter_raw(CHUNK):
                            f.write(chunk)
                            h.update(chunk)
                            got += len(chunk)
                            reporter.advance(len(chunk))
                    if total is not None and got != total:
                        last_err = f"short body: {got} of {total} bytes"
                        continue
            except httpx.HTTPError as e:
                last_err = f"{type(e).__name__}: {e}"
                if self.verbose:
                    reporter.note(f"retrying {url}: {last_err}")
                continue
            part.place()
            self._fetched(url, {"size": got, "sha256": h.hexdigest(), "fetched": time.time(), **meta},
                          got - have, reporter)
            return
        self._fail(url, f"gave up after {self.retries + 1} attempts: {last_err}", permanent=False)
        reporter.finished(url, False, last_err)

    async def _by_hash_fallback(self, client: httpx.AsyncClient, url: str, reporter: TransferProgress) -> bool:
        """Upstream answered 404 for an index's by-hash name (a mirror whose Release and by-hash tree are out
        of step): as apt does, fetch the plain name and check it against the Release digest; the verified
        body is filed under both names, so the offline client finds it whichever it asks for."""
        plain = self.index.plain_name(url)
        if plain is None:
            return False
        if not (plain in self.manifest["files"] and self._intact(plain)):
            self._queued.add(plain)
            known = self.index.known.get(plain)
            reporter.expect(1, known[0] if known else None)
            await self._download(client, plain, {}, reporter)
        rec = self.manifest["files"].get(plain)
        want = self.index.expected(url)
        if rec is None or want is None or (rec["size"], rec["sha256"]) != want:
            return False
        self.ds.copy_body(plain, url)
        self.manifest["files"][url] = dict(rec)
        self.manifest["failed"].pop(url, None)
        self.out.fell_back[url] = plain
        self._dirty = True
        reporter.finished(url, True)
        return True

    def _fail(self, url: str, reason: str, permanent: bool) -> None:
        self.manifest["failed"][url] = {"reason": reason, "permanent": permanent, "when": time.time()}
        self.out.failed[url] = reason
        self._dirty = True

    def _reject(self, url: str, reason: str) -> None:
        self.manifest["files"].pop(url, None)
        try:
            self.ds.remove_file(url)
        except (OSError, DatastoreError):
            pass
        self._fail(url, reason, permanent=False)

    def _unlisted(self, url: str) -> str | None:
        """Why url need not be fetched: apt guesses index names (every compression, binary-all) before it has
        a Release; once the suite's Release is here, names it does not list are known not to exist."""
        for info in self.index.releases.values():
            if url.startswith(info.base):
                rest = url[len(info.base):]
                if rest in ("InRelease", "Release", "Release.gpg"):
                    return None
                if url not in self.index.known:
                    return f"not listed in {info.url}"
                return self._other_name(info, url)
        return None

    def _other_name(self, info: ReleaseInfo, url: str) -> str | None:
        """A client that guessed names before it had a Release asked for every compression of an index; a
        stated target says which one it reads from now on, and only that one is brought."""
        name = indexplan.stem(self.index.names.get(url, ""))
        for t in self.requests:
            for target in t.targets:
                if target.base == info.base and target.name == name and (pick := indexplan.chosen(info, target)) \
                        and pick != url:
                    return f"another name of {name}: its client reads {pick}"
        return None

    def _enqueue(self, url: str, headers: dict[str, str], reporter: TransferProgress, expanded: bool = False,
                 fresh: bool = False) -> None:
        """fresh: download again even when an earlier round left it here (a stated source's Release)."""
        if url in self._queued:
            return
        self._queued.add(url)
        why = self._unlisted(url)
        if why:
            self.out.skipped[url] = why
            self.manifest.setdefault("skipped", {})[url] = {"reason": why, "when": time.time()}
            self._dirty = True
            return
        if not fresh and url in self.manifest["files"] and self._intact(url):
            if not expanded:
                self.out.present.append(url)
            return
        if expanded:
            self.out.expanded.append(url)
        known = self.index.known.get(url)
        reporter.expect(1, known[0] if known else None)
        self._queue.put_nowait((url, headers))

    def _learn_from_earlier_rounds(self) -> None:
        """What earlier rounds left in the datastore vouches for what this round fetches."""
        for url in list(self.manifest["files"]):
            if is_release_url(url) or rpmmeta.is_repomd(url):
                self._learn(url)
        for url in list(self.manifest["files"]):
            if not is_release_url(url) and (self.index.is_packages(url) or self.rpm.is_primary(url)):
                self._learn(url)

    def _check_all(self) -> None:
        """Files fetched before the index that vouches for them arrived are checked now."""
        for url in list(self.manifest["files"]):
            problem = self._check(url)
            if problem:
                self._reject(url, problem)
                if url in self.out.fetched:
                    self.out.fetched.remove(url)

    async def _fall_back_to_release(self, reporter: TransferProgress) -> None:
        """A stated suite without InRelease is read by apt from Release and Release.gpg: fetch those, and the
        missing InRelease is then not a failure."""
        missing = [u for u in requested.first_urls(self.requests)
                   if u.endswith("/InRelease") and self.out.failed.get(u, "").startswith("HTTP 404")]
        for url in missing:
            for other in requested.fallback_urls(url.removesuffix("InRelease")):
                self._enqueue(other, {}, reporter)
        await self._queue.join()
        for url in missing:
            if url.removesuffix("InRelease") + "Release" in self.manifest["files"]:
                why = "the suite has no InRelease; its Release was fetched"
                del self.out.failed[url]
                self.manifest["failed"].pop(url, None)
                self.out.skipped[url] = why
                self.manifest["skipped"][url] = {"reason": why, "when": time.time()}  # absent: 404 offline

    async def _resolve(self, reporter: TransferProgress) -> None:
        """Each stated request: apt resolves it against the indexes now in the datastore; its files join
        this trip's downloads."""
        for req in self.requests:
            res = await asyncio.to_thread(requested.resolve, self.ds, self.index, self.rpm, self.manifest["files"],
                                          req)
            self.out.resolved[req.id] = [u for u, _, _ in res.urls]
            if res.problems:
                self.out.unresolved[req.id] = res.problems
            self.manifest.setdefault("requests", {})[req.id] = {
                "packages": list(req.packages), "files": self.out.resolved[req.id], "problems": res.problems,
                "when": time.time()}
            self._dirty = True
            for url, _size, _sha in res.urls:
                self._enqueue(url, {}, reporter)

    async def run(self, wanted: list[dict[str, Any]]) -> Outcome:
        self._learn_from_earlier_rounds()
        self._queue: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
        with TransferProgress("fetch", tty=self.tty, verbose=self.verbose) as reporter:
            async with httpx.AsyncClient(proxy=self.proxy, timeout=self.timeout, follow_redirects=True,
                                         auth=BearerChallenge(),
                                         trust_env=False, verify=self.tls) as client:
                async def worker() -> None:
                    while True:
                        url, headers = await self._queue.get()
                        try:
                            await self._download(client, url, headers, reporter)
                        except (OSError, DatastoreError) as e:
                            self._fail(url, f"local error: {e}", permanent=False)
                            reporter.finished(url, False, str(e))
                        finally:
                            self._queue.task_done()

                workers = [asyncio.create_task(worker(), name=f"pkgcache: fetch worker {i}") for i in range(self.jobs)]
                # Release files first: they vouch for, add to and prune the rest of the list.
                for url in requested.first_urls(self.requests):  # the suites as they are now
                    self._enqueue(url, {}, reporter, fresh=True)
                for item in wanted:
                    self.others.asked(item["url"], item.get("headers", {}))
                    if is_release_url(item["url"]) or rpmmeta.is_repomd(item["url"]):
                        self._enqueue(item["url"], item.get("headers", {}), reporter)
                await self._queue.join()
                await self._fall_back_to_release(reporter)
                await self._resolve(reporter)
                for url in list(self.out.present):  # a wanted InRelease already here still names indexes
                    for more in self._learn(url):
                        self._enqueue(more, {}, reporter, expanded=True)
                for item in wanted:
                    self._enqueue(item["url"], item.get("headers", {}), reporter)
                await self._queue.join()
                for task in workers:
                    task.cancel()
            self.summary = reporter.summary()
        self._check_all()
        self._dirty = True
        self._save(force=True)
        return self.out
