"""The ``pkgcache`` command: runs the proxy and, as later issues add them, maintenance commands.

``pkgcache serve`` only execs mitmdump with the suite loaded, so every mitmproxy
flag keeps working and there is one way the proxy starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from .settings import default_cache_dir

ENTRY_SCRIPT = Path(__file__).resolve().parent.parent / "pkgcache.py"


def _serve(args: argparse.Namespace, extra: list[str]) -> int:
    tool = shutil.which(args.tool)
    if tool is None:
        print(f"pkgcache: {args.tool} not found on PATH (pip install mitmproxy)", file=sys.stderr)
        return 2
    if not ENTRY_SCRIPT.is_file():
        print(f"pkgcache: entry script {ENTRY_SCRIPT} missing; install with pip install -e .", file=sys.stderr)
        return 2
    argv = [tool, "-s", str(ENTRY_SCRIPT), "--set", f"pkgcache_dir={args.cache_dir}", *extra]
    os.execv(tool, argv)
    return 0  # not reached


def _ls(args: argparse.Namespace, extra: list[str]) -> int:
    from .store import CacheStore, StoreError

    try:
        store = CacheStore(args.cache_dir)
    except StoreError as e:
        print(f"pkgcache: {e}", file=sys.stderr)
        return 2
    total = 0
    for key in sorted(store.index.iterkeys()):
        entry = store.lookup(key)
        if entry is None:
            print(f"MISSING  {key}")
            continue
        total += entry.length
        print(f"{entry.length:>12}  {entry.kind:<9}  {entry.url}")
    print(f"{len(store.index)} entries, {total} bytes")
    return 0


def _fetch(args: argparse.Namespace, extra: list[str]) -> int:
    from .fetch import run_fetch

    archs = [a for a in (args.arch or "").split(",") if a] or None
    return run_fetch(Path(args.datastore), args.proxy, args.jobs, args.retries, not args.no_expand, archs)


def _mirrors_import(args: argparse.Namespace, extra: list[str]) -> int:
    """Debian's Mirrors.masterlist (deb822 paragraphs) -> one http URL per line, usable as `file:` merge list."""
    from debian import deb822

    try:
        with open(args.file, "rb") as f:
            urls = []
            for para in deb822.Deb822.iter_paragraphs(f, use_apt_pkg=False):
                site, path = para.get("Site"), para.get("Archive-http")
                if site and path:
                    urls.append(f"http://{site.strip()}/{path.strip().lstrip('/')}")
    except OSError as e:
        print(f"pkgcache mirrors import: {e}", file=sys.stderr)
        return 2
    text = "".join(u + "\n" for u in urls)
    if args.output:
        Path(args.output).write_text(text)
        print(f"pkgcache mirrors import: {len(urls)} mirrors written to {args.output}")
    else:
        sys.stdout.write(text)
        print(f"pkgcache mirrors import: {len(urls)} mirrors", file=sys.stderr)
    return 0 if urls else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pkgcache", description=__doc__)
    p.add_argument("--cache-dir", default=default_cache_dir(), help="cache root (default: %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run mitmdump (or --tool mitmweb) with pkgcache; other args go to it")
    s.add_argument("--tool", default="mitmdump", choices=["mitmdump", "mitmweb", "mitmproxy"])
    s.set_defaults(func=_serve)
    ls = sub.add_parser("ls", help="list cached files")
    ls.set_defaults(func=_ls)
    f = sub.add_parser("fetch", help="download a datastore's wanted list (on a connected machine)")
    f.add_argument("datastore", help="the datastore folder (e.g. the stick's pkgcache/ folder)")
    f.add_argument("--proxy", help="HTTP proxy to download through, e.g. http://proxy.example:3128")
    f.add_argument("--jobs", type=int, default=4, help="downloads at once (default: %(default)s)")
    f.add_argument("--retries", type=int, default=3, help="retries of a transient error (default: %(default)s)")
    f.add_argument("--no-expand", action="store_true",
                   help="fetch only the wanted URLs, not the indexes a fetched InRelease names")
    f.add_argument("--arch", help="Debian architectures to fetch indexes for (default: from the wanted list)")
    f.set_defaults(func=_fetch)
    m = sub.add_parser("mirrors", help="mirror list tools")
    msub = m.add_subparsers(dest="mcmd", required=True)
    mi = msub.add_parser("import", help="turn a Debian Mirrors.masterlist into a merge list (Remap-NAME: file:...)")
    mi.add_argument("file")
    mi.add_argument("-o", "--output", help="write the list here (default: standard output)")
    mi.set_defaults(func=_mirrors_import)
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd != "serve":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
