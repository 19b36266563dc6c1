"""Offline mode: options, the datastore's life cycle (folder or USB stick), and importing fetched files.

The per-request decisions (serve stale, answer 404 and record the URL) are made
by the core addon, which asks the Reachability and WantedList objects this addon
puts in the shared context; this addon has no per-request hooks at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mitmproxy import ctx

from pkgcache_suite.context import CacheContext
from pkgcache_suite.mountpoints import check_place
from pkgcache_suite.offline.datastore import Datastore, DatastoreError
from pkgcache_suite.offline.importer import ImportResult, asked_by, import_datastore, write_report
from pkgcache_suite.offline.reachability import Reachability
from pkgcache_suite.proxy import options
from pkgcache_suite.settings import parse_bounded, parse_cache_dir, parse_choice
from pkgcache_suite.policy.rules import Classifier
from pkgcache_suite.storage import PRIVATE, CacheStore
from pkgcache_suite.offline.usb import FileEventSource, UdevSource, UsbWatcher
from pkgcache_suite.offline.wanted import WantedList

log = logging.getLogger("pkgcache")

IMPORT_POLL = 1.0


def check_datastore_place(named: str) -> None:
    """A datastore folder an admin names must be there: an existing folder, or one to make directly on a
    mounted stick's root.  Anything else (a typo, a stick that is not mounted) is refused before anything
    is written, so no wanted list ever lands where the stick should have been."""
    path = Path(named).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise ValueError(f"pkgcache_datastore={named!r}: expected a folder or usb")
    unmounted = check_place(str(path))
    if unmounted:
        raise ValueError(f"pkgcache_datastore={named!r}: {unmounted}")
    if not os.path.lexists(path) and not os.path.ismount(path.parent):
        raise ValueError(f"pkgcache_datastore={named!r}: does not exist; create the folder first "
                         f"(mkdir {path}), or name a mounted stick's folder")


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
    def __init__(self, shared: CacheContext) -> None:
        self.c = shared
        self.datastore: Datastore | None = None
        self.datastore_setting = ""
        self.usb: UsbWatcher | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._last_manifest: tuple[int, int] | None = None
        self._importing = False
        self.last_import: dict[str, Any] = {}

    def load(self, loader: Any) -> None:
        loader.add_option("pkgcache_offline", str, "auto",
                          "auto: behave as offline for hosts that cannot be reached; on: never contact "
                          "upstream; off: always pass upstream errors through.",
                          choices=["auto", "on", "off"])
        loader.add_option("pkgcache_datastore", str, "",
                          "Datastore folder for the wanted list and fetched files, or 'usb' to use the "
                          "'pkgcache' folder of whichever USB stick is mounted; default: the cache's own "
                          "(.pkgcache/datastore in the cache root).")
        loader.add_option("pkgcache_probe_interval", str, "3",
                          "In offline=auto, seconds a real answer from a route is trusted without a probe (every "
                          "answer renews it); a slow probe never makes a request offline.")
        loader.add_option("pkgcache_usb_events", str, "udev",
                          "Where USB device events come from: 'udev', or 'file:PATH' (lines 'add DEVNODE' / "
                          "'remove DEVNODE'; for tests and simulation).")
        loader.add_option("pkgcache_mounts", str, "/proc/mounts", "Mount table used to find where a stick is mounted.")
        loader.add_option("pkgcache_deb_arch", str, "",
                          "Debian architectures of the clients (comma-separated), passed to 'pkgcache fetch' "
                          "in the wanted list so it can fetch the indexes they will ask for; default: dpkg's.")

    def configure(self, updated: set[str]) -> None:
        """Parse only what changed; up/down knowledge survives any reconfiguration."""
        try:
            self._configure(updated, ctx.options)
        except (ValueError, DatastoreError) as e:
            options.reject(ValueError(str(e)), self.c.fail_fast, self.c.started)

    def _configure(self, updated: set[str], opts: Any) -> None:
        if updated & {"pkgcache_offline", "pkgcache_probe_interval", "mode"}:
            mode = parse_choice("pkgcache_offline", opts.pkgcache_offline, ("auto", "on", "off"))
            interval = parse_bounded("pkgcache_probe_interval", opts.pkgcache_probe_interval, 0, 3600, "seconds")
            via = _upstream_proxy(list(opts.mode))
            if self.c.reachability is None:
                self.c.reachability = Reachability(mode, via=via, up_ttl=interval)
            else:
                self.c.reachability.reconfigure(mode, via, interval)
        if "pkgcache_mounts" in updated and not Path(opts.pkgcache_mounts).is_file():
            raise ValueError(f"pkgcache_mounts={opts.pkgcache_mounts!r}: not a readable mount table")
        if updated & {"pkgcache_dir", "pkgcache_deb_arch"}:
            archs = [a.strip() for a in opts.pkgcache_deb_arch.split(",") if a.strip()]
            bad = [a for a in archs if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", a)]
            if bad:
                raise ValueError(f"pkgcache_deb_arch={opts.pkgcache_deb_arch!r}: expected Debian architectures "
                                 "such as amd64,arm64")
            archs = archs or _dpkg_arch()
            local = parse_cache_dir(opts.pkgcache_dir) / PRIVATE / "wanted.json"
            if self.c.wanted is None or self.c.wanted.local_path != local:
                local.parent.mkdir(parents=True, exist_ok=True)
                self.c.wanted = WantedList(local, hints={"deb_arch": archs})
                self.c.wanted.on_datastore_error = lambda e: self._detach("write failed")
            self.c.wanted.hints = {"deb_arch": archs}
        if "pkgcache_usb_events" in updated:
            ev = opts.pkgcache_usb_events
            if ev != "udev" and not ev.startswith("file:"):
                raise ValueError(f"pkgcache_usb_events={ev!r}: expected udev or file:PATH")
        if updated & {"pkgcache_datastore", "pkgcache_dir"}:
            named = opts.pkgcache_datastore.strip()
            setting = named or str(default_datastore(parse_cache_dir(opts.pkgcache_dir)))
            if named and named != "usb":
                check_datastore_place(named)
            if setting != self.datastore_setting:
                self.datastore_setting = setting
                self._detach("reconfigured")
                if setting != "usb":
                    try:
                        self._attach(Path(setting).expanduser())
                    except DatastoreError as e:
                        raise ValueError(f"pkgcache_datastore: {e}") from None

    async def running(self) -> None:
        if self.datastore_setting == "usb" and self.usb is None:
            ev = ctx.options.pkgcache_usb_events
            source = FileEventSource(Path(ev[5:])) if ev.startswith("file:") else UdevSource()
            self.usb = UsbWatcher(source, Path(ctx.options.pkgcache_mounts),
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
        if self.c.wanted:
            self.c.wanted.flush()

    # -- datastore life cycle ---------------------------------------------------

    def _attach(self, root: Path) -> None:
        ds, created = Datastore.open(root)
        self.datastore = ds
        self._last_manifest = None
        log.info("pkgcache: %s datastore %s", "initialised" if created else "using", root)
        if self.c.wanted:
            self.c.wanted.attach(ds)

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
        if self.c.wanted:
            self.c.wanted.datastore = None

    # -- importing ----------------------------------------------------------------

    async def _poll_imports(self) -> None:
        while True:
            await asyncio.sleep(IMPORT_POLL)
            try:
                await self.check_import()
            except Exception:
                log.exception("pkgcache: import check failed")

    def _import(self, store: CacheStore, classifier: Classifier, ds: Datastore) -> ImportResult:
        """On a thread: only what the site has a use for is taken from a stick (offline/importer.py)."""
        wanted = self.c.wanted
        urls: list[str] = list(wanted.entries) if wanted else []
        for r in (list(wanted.requests.values()) if wanted else []):
            urls += [str(u) for u in r.get("repos", [])] + [str(t.get("base")) for t in r.get("targets", [])]
            urls += [str(src.get("repo")) for src in r.get("sources", [])]
        try:
            with os.scandir(store.root) as it:
                cached = [e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        except OSError:
            cached = []
        return import_datastore(store, classifier, ds, self.c.key_of, asked_by(self.c.key_of, urls, cached))

    async def check_import(self) -> None:
        ds, store, classifier = self.datastore, self.c.store, self.c.classifier
        if ds is None or store is None or classifier is None or self._importing:
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
            res = await asyncio.to_thread(self._import, store, classifier, ds)
        finally:
            self._importing = False
        if res.error is None and not res.busy:
            self._last_manifest = sig
        if self.c.wanted and res.done_urls:
            self.c.wanted.drop(res.done_urls)
        if self.c.wanted and res.error is None:
            self.c.wanted.settle_requests(res.fulfilled, res.unresolved)
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
