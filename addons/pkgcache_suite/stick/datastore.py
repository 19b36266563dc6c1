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

A stick is somebody else's: its folder must be a real folder, and no JSON file
is read past MAX_JSON.  This module is the one place that opens a path on a
datastore: everything else goes through :class:`Datastore` and :class:`Partial`.

Files of a datastore are reached from its root one name at a time, never
through a link.  Any folder on a stick may be a symbolic link to elsewhere on
the machine (``/etc``, the cache itself), and so may the datastore's own folder.
``O_NOFOLLOW`` guards only the last name of a path, so every name is opened
relative to the folder before it (``openat``), with ``O_NOFOLLOW``, starting from
the datastore's root, which must itself be a real folder.  A link anywhere on
the way is ``ELOOP`` (or ``ENOTDIR``): one entry refused, never a file outside
the stick read or written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import IO, Any

from pkgcache_suite.atomicfile import MAX_JSON, DatastoreError, atomic_write_bytes, atomic_write_json, read_json
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for_url

FORMAT = "pkgcache-datastore"
VERSION = 1
MARKER = "pkgcache-datastore.json"


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})


def check_root(root: Path) -> None:
    """The datastore's folder is a real folder, not a link to one (OSError otherwise)."""
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, f"{root} is a symbolic link", str(root))
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, f"{root} is not a folder", str(root))


def _names(rel: str) -> list[str]:
    names = rel.split("/")
    if not rel or any(n in ("", ".", "..") for n in names):
        raise OSError(errno.EINVAL, f"not a plain relative path: {rel!r}")
    return names


def _walk(root: Path, names: list[str], make_dirs: bool) -> int:
    """An fd on the folder root/names..., each name opened inside the one before it, never through a link."""
    fd = os.open(root, _DIR)
    try:
        for name in names:
            try:
                nxt = os.open(name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not make_dirs:
                    raise
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_beneath(root: Path, rel: str, flags: int = os.O_RDONLY, mode: int = 0o644, make_dirs: bool = False) -> int:
    """An fd on root/rel, reached without following any link; with make_dirs, missing folders are made
    (each one inside the real folder before it)."""
    names = _names(rel)
    fd = _walk(root, names[:-1], make_dirs)
    try:
        return os.open(names[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    finally:
        os.close(fd)


def real_folder(root: Path, rel: str) -> Path:
    """root/rel as a path whose every folder was checked (and made) as a real folder from root down: for
    code that writes by path (a download's partial file beside its final name)."""
    names = _names(rel)
    os.close(_walk(root, names, make_dirs=True))
    return root.joinpath(*names)


def open_nofollow(path: Path, mode: str) -> IO[Any]:
    """open() for a file of a checked folder: never through a link planted at its own name."""
    flags = {"rb": os.O_RDONLY, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC}[mode]
    return os.fdopen(os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644), mode)


def fd_digest(fd: int) -> tuple[int, str]:
    """(size, SHA-256) of what fd reads from where it is."""
    h, size = hashlib.sha256(), 0
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


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

    def copy_body(self, src_url: str, dst_url: str) -> None:
        """File src_url's body under dst_url too, by a copy (a stick's file system may have no links) through
        a partial file, renamed into place."""
        part = self.partial(dst_url)
        fd = self.open_file(src_url)
        try:
            with part.open("wb") as out:
                while chunk := os.read(fd, 1 << 20):
                    out.write(chunk)
        finally:
            os.close(fd)
        part.place()

    def read_wanted_doc(self) -> dict[str, Any]:
        return read_json(self.wanted_path, {"version": VERSION, "wanted": []})

    @staticmethod
    def is_stick_root(path: Path) -> bool:
        """path is a stick's root that holds a datastore folder ``pkgcache/``, not a datastore itself."""
        return (path / "pkgcache").is_dir() and not os.path.lexists(path / MARKER)

    def has_wanted_list(self) -> bool:
        return os.path.lexists(self.wanted_path)

    def has_status(self, sha256: str) -> bool:
        return os.path.lexists(self.status_path(sha256))

    def put_status(self, sha256: str, data: bytes) -> None:
        real_folder(self.root, "status")
        atomic_write_bytes(self.status_path(sha256), data)

    def read_status(self, sha256: str, limit: int = MAX_JSON) -> bytes:
        """A stated request's dpkg status (or rpmdb), read without following a link and checked against its
        name, which is its digest (DatastoreError when it does not match)."""
        self.status_path(sha256)  # the name is a digest
        fd = open_beneath(self.root, f"status/{sha256}")
        try:
            data = os.read(fd, limit + 1)
            while len(data) <= limit and (more := os.read(fd, 1 << 20)):
                data += more
        finally:
            os.close(fd)
        if len(data) > limit:
            raise DatastoreError(f"status/{sha256} is larger than {limit >> 20} MiB")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DatastoreError(f"status/{sha256} does not match its digest")
        return data

    def remove_file(self, url: str) -> None:
        """Drop url's body (a fetched file that failed its checks); nothing outside the datastore is touched."""
        try:
            key = key_for_url(url)
        except UnsafeURL as e:
            raise DatastoreError(f"unsafe URL in datastore: {e}") from None
        parent, _, name = key.rpartition("/")
        fd = _walk(self.root, _names("files" + (f"/{parent}" if parent else "")), make_dirs=False)
        try:
            os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)

    def write_report(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.report_path, doc)

    def partial(self, url: str) -> Partial:
        return Partial(self, url)

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


class Partial:
    """One download in progress on the datastore: its partial body and the validators it was sent with, in
    the datastore's own partial folder (checked as a real folder), renamed into place when whole."""

    def __init__(self, ds: Datastore, url: str) -> None:
        self.ds, self.url = ds, url
        self.body = ds.partial_folder() / hashlib.sha256(url.encode()).hexdigest()
        self.side = self.body.with_suffix(".json")
        for planted in (p for p in (self.body, self.side) if p.is_symlink()):
            planted.unlink()

    def resume_state(self) -> tuple[int, dict[str, Any]]:
        """(bytes already here, the validators they came with); (0, {}) when there is nothing to go on from."""
        try:
            with open_nofollow(self.body, "rb") as f:
                have = os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            return 0, {}
        if not have:
            return 0, {}
        try:
            with open_nofollow(self.side, "rb") as f:
                validators = json.loads(f.read(1 << 16) or b"{}")
        except (FileNotFoundError, ValueError):
            validators = {}
        return have, validators if isinstance(validators, dict) else {}

    def digest_so_far(self) -> Any:
        """A SHA-256 fed with the bytes already here (a resumed download goes on from it)."""
        h = hashlib.sha256()
        with open_nofollow(self.body, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h

    def write_validators(self, meta: dict[str, Any]) -> None:
        with open_nofollow(self.side, "w") as f:
            f.write(json.dumps(meta))

    def open(self, mode: str) -> IO[Any]:
        return open_nofollow(self.body, mode)

    def discard(self) -> None:
        self.body.unlink(missing_ok=True)

    def place(self) -> None:
        """The whole body goes to its name, every folder on the way a real one."""
        os.replace(self.body, self.ds.folder_for(self.url) / self.ds.file_path(self.url).name)
        self.side.unlink(missing_ok=True)
