"""Find datastores on USB sticks as they come and go.

Everything but the source of device events is shared: filtering for USB block
devices, waiting for the desktop to mount them, finding or creating the
datastore folder.  The source is the seam: :class:`UdevSource` is pyudev's
netlink monitor (the real thing, kept thin); :class:`FileEventSource` reads
``add DEVNODE`` / ``remove DEVNODE`` lines from a file, which is how tests and a
curious admin simulate a stick.  Mount points always come from a mounts table
(``/proc/mounts`` unless told otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger("pkgcache")

DATASTORE_DIR = "pkgcache"
MOUNT_WAIT = 30.0

EventCallback = Callable[[str, str, dict[str, str]], None]  # (action, devnode, properties)


class DeviceSource(Protocol):
    def start(self, loop: asyncio.AbstractEventLoop, callback: EventCallback) -> None: ...
    def stop(self) -> None: ...


class UdevSource:
    """USB block devices from udev, via pyudev's monitor thread."""

    def __init__(self) -> None:
        self._observer = None

    def start(self, loop: asyncio.AbstractEventLoop, callback: EventCallback) -> None:
        import pyudev

        context = pyudev.Context()
        for dev in context.list_devices(subsystem="block"):
            if dev.properties.get("ID_BUS") == "usb" and dev.device_node:
                loop.call_soon_threadsafe(callback, "add", dev.device_node, dict(dev.properties))
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by("block")

        def on_event(dev: pyudev.Device) -> None:
            if dev.properties.get("ID_BUS") == "usb" and dev.device_node:
                loop.call_soon_threadsafe(callback, dev.action or "change", dev.device_node, dict(dev.properties))

        observer = pyudev.MonitorObserver(monitor, callback=on_event, name="pkgcache-udev")
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer = None


class FileEventSource:
    """Simulated device events: lines 'add DEVNODE' or 'remove DEVNODE' appended to a file."""

    def __init__(self, path: Path, poll: float = 0.2) -> None:
        self.path, self.poll = path, poll
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, callback: EventCallback) -> None:
        async def tail() -> None:
            pos = 0
            while True:
                try:
                    with open(self.path, "rb") as f:
                        f.seek(pos)
                        data = f.read()
                except FileNotFoundError:
                    data = b""
                if b"\n" in data:
                    complete, _, _ = data.rpartition(b"\n")
                    pos += len(complete) + 1
                    for line in complete.decode(errors="replace").splitlines():
                        parts = line.split()
                        if len(parts) >= 2:
                            callback(parts[0], parts[1], {"ID_BUS": "usb", "DEVTYPE": "partition"})
                await asyncio.sleep(self.poll)

        self._task = loop.create_task(tail(), name="pkgcache: USB events from a file")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _unescape_mount(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mountpoint_of(devnode: str, mounts_file: Path) -> Path | None:
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(devnode)
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (devnode, real):
            return Path(_unescape_mount(parts[1]))
    return None


class UsbWatcher:
    """Calls on_attach(datastore_dir) when a USB stick is mounted and on_detach() when it goes."""

    def __init__(self, source: DeviceSource, mounts_file: Path,
                 on_attach: Callable[[Path], None], on_detach: Callable[[str], None]) -> None:
        self.source, self.mounts_file = source, mounts_file
        self.on_attach, self.on_detach = on_attach, on_detach
        self.current: str | None = None  # devnode of the stick in use
        self._waits: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        self.source.start(asyncio.get_running_loop(), self._event)

    def stop(self) -> None:
        self.source.stop()
        for t in self._waits.values():
            t.cancel()

    def _event(self, action: str, devnode: str, props: dict[str, str]) -> None:
        if action in ("add", "change"):
            if devnode not in self._waits and devnode != self.current:
                self._waits[devnode] = asyncio.get_running_loop().create_task(
                    self._wait_mount(devnode), name=f"pkgcache: wait for {devnode} to be mounted")
        elif action == "remove":
            t = self._waits.pop(devnode, None)
            if t:
                t.cancel()
            if devnode == self.current:
                self.current = None
                log.info("pkgcache: USB datastore on %s removed; carrying on from the local cache", devnode)
                self.on_detach(devnode)

    async def _wait_mount(self, devnode: str) -> None:
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + MOUNT_WAIT
            while loop.time() < deadline:
                mnt = mountpoint_of(devnode, self.mounts_file)
                if mnt is not None and mnt.is_dir():
                    self.current = devnode
                    log.info("pkgcache: USB device %s mounted at %s", devnode, mnt)
                    self.on_attach(mnt / DATASTORE_DIR)
                    return
                await asyncio.sleep(0.25)
            log.info("pkgcache: USB device %s was not mounted within %.0f s; ignoring it", devnode, MOUNT_WAIT)
        finally:
            self._waits.pop(devnode, None)
