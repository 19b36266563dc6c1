"""The datastore: the folder (often on a USB stick) that carries work between an offline and a connected machine.

Format version 1, documented in docs/datastore.md::

    pkgcache-datastore.json   {"format": "pkgcache-datastore", "version": 1, "created": <unix time>}
    wanted.json               URLs the offline side could not serve, and the packages its clients stated they
                              want ("requests"), written by the proxy
    status/<sha256>           a client's dpkg status, named by a request, so fetch skips what is installed
    manifest.json             what `pkgcache fetch` downloaded: size and SHA-256 per URL, and failures
    files/<key>               downloaded bodies, in the cache's host/path layout
    import-report.json        what the proxy imported or rejected last time, written by the proxy

Every JSON file is replaced atomically (temporary file, fsync, rename, fsync of
the folder), so a stick pulled out or a process killed at any moment leaves
either the old file or the new one, never a truncated one.

A stick is somebody else's: its folder must be a real folder, every file in
it is reached without following a link (offline/beneath.py), and no JSON
file is read past MAX_JSON.
"""

from __future__ import annotations

from pkgcache_suite.errors import PkgcacheError

import json
import os
import time
from pathlib import Path
from typing import Any

from pkgcache_suite.offline.beneath import check_root, fd_digest, open_beneath, open_nofollow, real_folder
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for_url

FORMAT = "pkgcache-datastore"
VERSION = 1
MARKER = "pkgcache-datastore.json"
MAX_JSON = 32 << 20  # a manifest of about 150,000 files; larger is refused, not read into memory


class DatastoreError(PkgcacheError, OSError):
    """The datastore is unusable (gone, unwritable, or of a format this version does not know)."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write a file so that it is either whole or absent, and on the medium when this returns.  The folder
    must exist: creating it could write to the mount point of a stick just pulled out."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)  # a leftover, or a planted link: never write through it
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def read_json(path: Path, default: Any, limit: int = MAX_JSON) -> Any:
    """Read a JSON file without following a link (a planted link reads as an error, never as its target),
    and not at all past limit bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise DatastoreError(f"cannot read {path}: {size} bytes, more than the {limit} this reads")
            return json.loads(f.read(limit + 1))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        raise DatastoreError(f"cannot read {path}: {e}") from None


class Datastore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(cls, root: Path | str, create: bool = True) -> tuple[Datastore, bool]:
        """Open a datastore, initialising it if needed; returns (datastore, was_created)."""
        root = Path(root)
        # the folders above are the admin's own (a link among them is theirs to make); the datastore's own
        # folder is the stick's, and is checked below
        root = Path(os.path.realpath(root.parent)) / root.name
        marker = root / MARKER
        created = False
        try:
            if create and not os.path.lexists(root):
                root.mkdir(parents=True, exist_ok=True)  # another process of a tier may make it first
            check_root(root)  # a link to another folder is refused, never written through
            if not os.path.lexists(marker):
                if not create:
                    raise DatastoreError(f"{root} is not a pkgcache datastore (no {MARKER})")
                real_folder(root, "files")
                atomic_write_json(marker, {"format": FORMAT, "version": VERSION, "created": time.time()})
                created = True
            meta = read_json(marker, {})
        except DatastoreError:
            raise
        except OSError as e:
            raise DatastoreError(f"cannot use datastore {root}: {e}") from None
        if meta.get("format") != FORMAT:
            raise DatastoreError(f"{marker} is not a pkgcache datastore marker")
        if meta.get("version") != VERSION:
            raise DatastoreError(f"{root} has datastore version {meta.get('version')}; this pkgcache reads {VERSION}")
        try:
            real_folder(root, "files")
        except OSError as e:
            raise DatastoreError(f"cannot use datastore {root}: files/: {e}") from None
        return cls(root), created

    @property
    def wanted_path(self) -> Path:
        return self.root / "wanted.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_path(self) -> Path:
        return self.root / "import-report.json"

    def file_path(self, url: str) -> Path:
        """Where a fetched body for url lives; the key mapping refuses traversal, as in the cache."""
        try:
            return self.root / "files" / key_for_url(url)
        except UnsafeURL as e:
            raise DatastoreError(f"unsafe URL in datastore: {e}") from None

    def open_file(self, url: str) -> int:
        """A read-only fd on the fetched body for url, reached from the datastore's root without following any
        link (OSError with ELOOP or ENOTDIR when one is on the way)."""
        try:
            return open_beneath(self.root, "files/" + key_for_url(url))
        except UnsafeURL as e:
            raise DatastoreError(f"unsafe URL in datastore: {e}") from None

    def folder_for(self, url: str) -> Path:
        """The folder url's body goes in, every folder on the way checked (and made) as a real one: a fetch
        writes nothing through a link the stick carries."""
        try:
            key = key_for_url(url)
        except UnsafeURL as e:
            raise DatastoreError(f"unsafe URL in datastore: {e}") from None
        parent = key.rsplit("/", 1)[0] if "/" in key else ""
        return real_folder(self.root, "files" + (f"/{parent}" if parent else ""))

    def partial_folder(self) -> Path:
        return real_folder(self.root, "files/.partial")

    def intact(self, url: str, size: int, sha256: str) -> bool:
        """The body for url is a plain file of the datastore with this size and SHA-256."""
        try:
            fd = self.open_file(url)
        except (OSError, DatastoreError):
            return False
        try:
            return os.fstat(fd).st_size == size and fd_digest(fd) == (size, sha256)
        finally:
            os.close(fd)

    def copy_body(self, src_url: str, dst_url: str, part: Path) -> None:
        """File src_url's body under dst_url too, by a copy (a stick's file system may have no links) through
        part, renamed into place."""
        fd = self.open_file(src_url)
        try:
            with open_nofollow(part, "wb") as out:
                while chunk := os.read(fd, 1 << 20):
                    out.write(chunk)
        finally:
            os.close(fd)
        os.replace(part, self.folder_for(dst_url) / self.file_path(dst_url).name)

    def read_wanted_doc(self) -> dict[str, Any]:
        return read_json(self.wanted_path, {"version": VERSION, "wanted": []})

    def status_path(self, sha256: str) -> Path:
        """Where a stated request's dpkg status is kept; the name is its digest, so it is checked on reading."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise DatastoreError(f"bad status digest {sha256!r}")
        return self.root / "status" / sha256

    def write_wanted(self, entries: list[dict[str, Any]], hints: dict[str, Any],
                     requests: list[dict[str, Any]] | None = None) -> None:
        atomic_write_json(self.wanted_path, {"version": VERSION, "written": time.time(), "hints": hints,
                                             "wanted": entries, "requests": requests or []})

    def read_manifest(self) -> dict[str, Any]:
        m = read_json(self.manifest_path, None)
        if m is None:
            return {"version": VERSION, "files": {}, "failed": {}, "skipped": {}}
        if m.get("version") != VERSION:
            raise DatastoreError(f"{self.manifest_path} has version {m.get('version')}; expected {VERSION}")
        m.setdefault("files", {})
        m.setdefault("failed", {})
        m.setdefault("skipped", {})
        return m

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["version"] = VERSION
        manifest["written"] = time.time()
        atomic_write_json(self.manifest_path, manifest)
