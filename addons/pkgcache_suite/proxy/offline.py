"""Offline mode: options, the datastore's life cycle (folder or USB stick), and importing fetched files.

The per-request decisions (serve stale, answer 404 and record the URL) are made
by the core addon, which is handed this addon's Reachability and WantedList when
the suite is assembled; this addon has no per-request hooks at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx

from pkgcache_suite.context import CacheContext
from pkgcache_suite.stick.datastore import Datastore, DatastoreError
from pkgcache_suite.stick.importer import ImportResult, asked_by, import_datastore, write_report
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.proxy.storeaddon import NotOpen
from pkgcache_suite.proxy import options
from pkgcache_suite.settings import OfflineSettings, default_cache_dir, parse_section
from pkgcache_suite.settings.table import names
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.storage import PRIVATE, CacheStore
from pkgcache_suite.stick.usb import FileEventSource, UdevSource, UsbWatcher
from pkgcache_suite.wanted.wantedlist import WantedList

if TYPE_CHECKING:
    from pkgcache_suite.proxy.router import Router
    from pkgcache_suite.storage.opened import OpenedStore

log = logging.getLogger("pkgcache")

IMPORT_POLL = 1.0
_MINE = names(OfflineSettings.SECTION)


def default_datastore(cache_dir: Path) -> Path:
    """Without a setting, each cache has its own datastore: two instances of one user never share a list."""
    return cache_dir / PRIVATE / "datastore"


def _dpkg_arch() -> list[str]:
    if not shutil.which("dpkg"):
        return []
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, timeout=5).stdout
        extra = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True,
                               timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [a for a in (out.split() + extra.split()) if a]


def _upstream_proxy(modes: list[str]) -> tuple[str, int] | None:
    for m in modes:
        if m.startswith("upstream:"):
            rest = m.split("://", 1)[-1].rstrip("/")
            host, _, port = rest.rpartition(":")
            if host and port.isdigit():
                return host.strip("[]"), int(port)
    return None


class OfflineAddon:
    """Owns the wanted list; shares the Reachability it is given with the router and the cache addon."""

    def __init__(self, shared: CacheContext, storage: OpenedStore, reach: Reachability, router: Router) -> None:
        self.c, self.storage, self.reach, self.router = shared, storage, reach, router
        self._wanted: WantedList | None = None
        self.datastore: Datastore | None = None
        self.datastore_setting = ""
        self.s = OfflineSettings(cache_dir=Path(default_cache_dir()))
        self.usb: UsbWatcher | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._last_manifest: tuple[int, int] | None = None
        self._importing = False
        self.last_import: dict[str, Any] = {}

    def wanted_list(self) -> WantedList:
        """The wanted list: made by the first configure(), before any request."""
        if self._wanted is None:
            raise NotOpen("the wanted list is not set up yet")
        return self._wanted

    def load(self, loader: Any) -> None:
        options.declare(loader, OfflineSettings.SECTION)

    def configure(self, updated: set[str]) -> None:
        """Parse only what changed, then apply it; up/down knowledge survives any reconfiguration."""
        if not updated & (_MINE | {"mode"}):
            return
        try:
            s = parse_section(OfflineSettings, ctx.options, updated, self.s)
            self._apply(s, updated, list(ctx.options.mode))
        except (ValueError, DatastoreError) as e:
            options.reject(ValueError(str(e)), self.c.fail_fast, self.c.started)

    def _apply(self, s: OfflineSettings, updated: set[str], modes: list[str]) -> None:
        """The side effects of new settings: the reachability rules, the wanted list, the datastore; the
        settings are kept only once all of them took (a refused value leaves the old ones in force)."""
        if updated & {"pkgcache_offline", "pkgcache_probe_interval", "mode"}:
            self.reach.reconfigure(s.mode, _upstream_proxy(modes), s.probe_interval)
        if updated & {"pkgcache_dir", "pkgcache_deb_arch"}:
            archs = list(s.deb_arch) or _dpkg_arch()
            local = s.cache_dir / PRIVATE / "wanted.json"
            if self._wanted is None or self._wanted.local_path != local:
                local.parent.mkdir(parents=True, exist_ok=True)
                self._wanted = WantedList(local, hints={"deb_arch": archs})
                self._wanted.on_datastore_error = lambda e: self._detach("write failed")
                if self.datastore is not None:
                    self._wanted.attach(self.datastore)
            self._wanted.hints = {"deb_arch": archs}
        if updated & {"pkgcache_datastore", "pkgcache_dir"}:
            setting = s.datastore or str(default_datastore(s.cache_dir))
            if setting != self.datastore_setting:
                self.datastore_setting = setting
                self._detach("reconfigured")
                if setting != "usb":
                    try:
                        self._attach(Path(setting).expanduser())
                    except DatastoreError as e:
                        raise ValueError(f"pkgcache_datastore: {e}") from None
        self.s = s

    async def running(self) -> None:
        if self.datastore_setting == "usb" and self.usb is None:
            ev = self.s.usb_events
            source = FileEventSource(Path(ev[5:])) if ev.startswith("file:") else UdevSource()
            self.usb = UsbWatcher(source, self.s.mounts,
                                  on_attach=self._attach_usb, on_detach=lambda dev: self._detach(f"{dev} removed"))
            try:
                self.usb.start()
                log.info("pkgcache: watching for USB datastores (%s)", "udev" if ev == "udev" else ev)
            except Exception as e:  # no udev in a container, no netlink permission...
                log.error("pkgcache: cannot watch USB devices (%s); offline misses are kept locally", e)
                self.usb = None
        if self._poll_task is None:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_imports(),
                                                                     name="pkgcache: datastore import poll")

    def done(self) -> None:
        if self._poll_task:
            self._poll_task.cancel()
        if self.usb:
            self.usb.stop()
        if self._wanted is not None:
            self._wanted.flush()

    # -- datastore life cycle ---------------------------------------------------

    def _attach(self, root: Path) -> None:
        ds, created = Datastore.open(root)
        self.datastore = ds
        self._last_manifest = None
        log.info("pkgcache: %s datastore %s", "initialised" if created else "using", root)
        if self._wanted is not None:
            self._wanted.attach(ds)

    def _attach_usb(self, root: Path) -> None:
        try:
            self._attach(root)
        except DatastoreError as e:
            log.error("pkgcache: cannot use USB datastore: %s", e)

    def _detach(self, why: str) -> None:
        if self.datastore is None:
            return
        log.warning("pkgcache: datastore %s detached (%s)", self.datastore.root, why)
        self.datastore = None
        if self._wanted is not None:
            self._wanted.datastore = None

    # -- importing ----------------------------------------------------------------

    async def _poll_imports(self) -> None:
        while True:
            await asyncio.sleep(IMPORT_POLL)
            try:
                await self.check_import()
            except Exception:
                log.exception("pkgcache: import check failed")

    def _import(self, store: CacheStore, classifier: Classifier, ds: Datastore) -> ImportResult:
        """On a thread: only what the site has a use for is taken from a stick (stick/importer.py)."""
        wanted = self.wanted_list()
        urls: list[str] = list(wanted.entries)
        for r in list(wanted.requests.values()):
            urls += [str(u) for u in r.get("repos", [])] + [str(t.get("base")) for t in r.get("targets", [])]
            urls += [str(src.get("repo")) for src in r.get("sources", [])]
        try:
            with os.scandir(store.root) as it:
                cached = [e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        except OSError:
            cached = []
        key_of = self.router.key_of
        return import_datastore(store, classifier, ds, key_of, asked_by(key_of, urls, cached),
                                keyrings=self.storage.settings.keyrings, repo_keyrings=self.router.keyrings_of)

    async def check_import(self) -> None:
        ds = self.datastore
        if ds is None or self._importing or not self.storage.is_open:
            return
        try:
            st = os.stat(ds.manifest_path)
        except FileNotFoundError:
            return
        except OSError as e:
            self._detach(f"unreadable: {e}")
            return
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._last_manifest:
            return
        self._importing = True
        try:
            res = await asyncio.to_thread(self._import, self.storage.store, self.storage.classifier, ds)
        finally:
            self._importing = False
        if res.error is None and not res.busy:
            self._last_manifest = sig
        if res.done_urls:
            self.wanted_list().drop(res.done_urls)
        if res.error is None:
            self.wanted_list().settle_requests(res.fulfilled, res.unresolved)
        for url, why in res.rejected.items():
            log.error("pkgcache: not importing %s: %s", url, why)
        log.info("pkgcache: imported %d files from %s (%d already cached, %d rejected%s)",
                 len(res.imported), ds.root, len(res.already), len(res.rejected),
                 f"; stopped: {res.error}" if res.error else "")
        self.last_import = {"datastore": str(ds.root), "imported": len(res.imported),
                            "already": len(res.already), "rejected": res.rejected, "error": res.error}
        if res.error is None:
            await asyncio.to_thread(write_report, ds, res)
        else:
            self._detach(res.error)
