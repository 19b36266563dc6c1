"""The ``pkgcache`` command: runs the proxy (cli/serve.py), fills datastores, and maintains the cache."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

from pkgcache_suite.cli.serve import serve as _serve
from pkgcache_suite.settings import default_cache_dir
from pkgcache_suite.units import human_size


def _ls(args: argparse.Namespace, extra: list[str]) -> int:

    store = _open_store(args)
    total = shown = 0
    for key in itertools.islice(store.iter_keys(), args.limit):
        shown += 1
        entry = store.lookup(key)
        if entry is None:
            print(f"MISSING  {key}")
            continue
        total += entry.length
        size = str(entry.length) if args.bytes else human_size(entry.length)
        print(f"{size:>12}  {entry.kind:<9}  {entry.url}")
    if args.limit is not None and shown == args.limit and shown < len(store):
        print(f"the first {shown} of {len(store)} entries ({human_size(total)} shown)")
    else:
        print(f"{len(store)} entries, {human_size(total)}")
    return 0


def _fetch(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.cli.fetch import run_fetch

    archs = [a for a in (args.arch or "").split(",") if a] or None
    return run_fetch(Path(args.datastore), args.proxy, args.jobs, args.retries, not args.no_expand, archs,
                     verbose=args.verbose, everything=args.all_indexes, cacert=args.cacert)


def _want(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.cli.want import WantArgs, run_want

    return run_want(WantArgs(args.proxy, args.packages, args.status, args.no_status, args.arch, args.no_recommends,
                             args.rpm, args.repo or [], args.oci or []))


def _mirrors_import(args: argparse.Namespace, extra: list[str]) -> int:
    """Debian's Mirrors.masterlist (deb822 paragraphs) -> one http URL per line, usable as `file:` merge list."""
    from pkgcache_suite.repos.config import read_list_file

    try:
        with open(args.file, "rb") as f:
            urls = read_list_file(f.read().decode("utf-8", errors="replace"))
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


def _open_store(args: argparse.Namespace):
    """The cache the command works on; a mistyped root is refused, never created."""
    from pkgcache_suite.storage import PRIVATE, CacheStore, StoreError

    root = Path(args.cache_dir).expanduser()
    if not (root / PRIVATE).is_dir():
        what = "does not exist" if not root.exists() else "is not a pkgcache cache (it has no .pkgcache/)"
        print(f"pkgcache: {root} {what}; name the cache with --cache-dir or PKGCACHE_DIR", file=sys.stderr)
        raise SystemExit(2)
    try:
        return CacheStore(root)
    except StoreError as e:
        print(f"pkgcache: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _progress(label: str):
    from pkgcache_suite.progress import CountProgress

    return lambda total: CountProgress(label, total)


def _expire(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.maintenance.tasks import expire
    from pkgcache_suite.progress import CountProgress as Progress

    store = _open_store(args)
    res = expire(store, grace_days=args.grace_days, now_=args.now, dry_run=args.dry_run,
                 progress=Progress("expire", len(store)))
    for root, errors in res.refused_roots.items():
        print(f"REFUSED {root}: index parsing failed, nothing under it is deleted:")
        for e in errors:
            print(f"  {e}")
    for root in res.limited:
        print(f"limited {root}: its index gives names and sizes but no SHA-256 (Alpine): "
              "files are matched by name and size only")
    for key in res.would_delete:
        print(f"would delete {key}")
    if args.dry_run:
        import time as _t

        for key, since in sorted(res.orphaned.items()):
            if key not in res.would_delete:
                left = args.grace_days - (_t.time() - since) / 86400
                print(f"orphan {key} (would be deleted in {max(left, 0):.1f} days)")
    for key in res.deleted:
        print(f"deleted {key}")
    waiting = len(res.orphaned) - len(res.would_delete)
    print(f"pkgcache expire: {len(res.deleted)} deleted ({human_size(res.freed)}), {len(res.would_delete)} would be "
          f"deleted, {max(waiting, 0)} orphans within the {args.grace_days:g}-day grace period")
    return 1 if res.refused_roots else 0


def _verify(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.maintenance.tasks import verify

    store = _open_store(args)
    res = verify(store, fix=args.fix, progress_factory=_progress("verify"))
    for key, why in sorted(res.damaged.items()):
        print(f"DAMAGED {key}: {why}" + (f" [{args.fix}d]" if key in res.fixed else ""))
    for root, errors in res.refused_roots.items():
        print(f"index errors under {root}: {'; '.join(errors)}")
    print(f"pkgcache verify: {res.checked} checked, {len(res.damaged)} damaged, {len(res.fixed)} fixed, "
          f"{len(res.skipped_busy)} skipped (being downloaded)")
    return 1 if len(res.damaged) > len(res.fixed) or res.refused_roots else 0


def _import(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.maintenance.tasks import import_dir

    store = _open_store(args)
    if args.datastore:
        from pkgcache_suite.cli.stickimport import run_stick_import

        return run_stick_import(store, Path(args.dir), Path(args.rules) if args.rules else None, args.keyrings)
    res = import_dir(store, Path(args.dir), progress_factory=_progress("import"))
    for key in res.placed:
        print(f"imported {key}")
    for path in res.unmatched:
        print(f"unmatched {path}")
    for path, why in res.failed.items():
        print(f"FAILED {path}: {why}")
    print(f"pkgcache import: {len(res.placed)} placed, {len(res.already)} already cached, "
          f"{len(res.unmatched)} unmatched (left where they are), {len(res.failed)} failed")
    return 1 if res.failed else 0


def _precache(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.cli.precache import run_precache
    from pkgcache_suite.maintenance.precache import Selection

    def split(values: list[str] | None) -> tuple[str, ...]:
        return tuple(v for item in values or [] for v in item.split(",") if v)

    selection = Selection(tuple(args.patterns), split(args.suite), split(args.component), split(args.arch))
    if not selection:
        print("pkgcache precache: say what to precache: --suite/--component/--arch, or a pattern", file=sys.stderr)
        return 2
    return run_precache(_open_store(args), selection, args.proxy, args.jobs, args.estimate, args.verbose)


def _releases(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.maintenance.tasks import releases, remove_release

    store = _open_store(args)
    if args.action == "remove":
        if not args.name:
            print("pkgcache releases remove: name a release (SUITE or ROOT:SUITE)", file=sys.stderr)
            return 2
        known = [r["name"] for r in releases(store)]
        if args.name not in known and not any(k.endswith(":" + args.name) for k in known):
            print(f"pkgcache releases remove: no release {args.name!r} in the cache; known: "
                  f"{', '.join(known) or 'none'}", file=sys.stderr)
            return 1
        removed = remove_release(store, args.name)
        for key in removed:
            print(f"removed {key}")
        print(f"pkgcache releases: removed {len(removed)} index files of {args.name}; "
              "run pkgcache expire to collect its packages")
        return 0 if removed else 1
    rels = releases(store)
    for r in rels:
        print(f"{r['name']:<50} {r['index_files']:>5} index files {human_size(r['index_bytes']):>10}  "
              f"{r['packages']:>6} packages {human_size(r['package_bytes']):>10}"
              + ("  (index errors)" if r["errors"] else ""))
    return 0


def _pin(args: argparse.Namespace, extra: list[str]) -> int:
    from pkgcache_suite.maintenance.pins import read_pins, write_pins
    from pkgcache_suite.storage import PRIVATE

    private = _open_store(args).root / PRIVATE
    pins = read_pins(private)
    if args.remove:
        unknown = [p for p in args.patterns if p not in pins]
        if unknown:
            print(f"pkgcache pin: not pinned: {', '.join(unknown)}; pinned: {', '.join(pins) or 'nothing'}",
                  file=sys.stderr)
            return 1
        pins = [p for p in pins if p not in args.patterns]
    else:
        pins += [p for p in args.patterns if p not in pins]
    if args.patterns:
        write_pins(private, pins)
    for p in pins:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pkgcache", description=__doc__)
    default_dir = os.environ.get("PKGCACHE_DIR") or default_cache_dir()
    p.add_argument("--cache-dir", default=default_dir,
                   help="cache root (default: $PKGCACHE_DIR, else %(default)s); also accepted after the command")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", default=argparse.SUPPRESS, help="cache root (as before the command)")
    sub = p.add_subparsers(dest="cmd", required=True)
    real_add = sub.add_parser

    def add_parser(name: str, **kw: object) -> argparse.ArgumentParser:
        return real_add(name, parents=[common], **kw)  # type: ignore[arg-type]

    sub.add_parser = add_parser  # type: ignore[method-assign]
    s = sub.add_parser("serve", help="run mitmdump (or --tool mitmweb) with pkgcache; other args go to it")
    s.add_argument("--tool", default="mitmdump", choices=["mitmdump", "mitmweb", "mitmproxy"],
                   help="which mitmproxy front end runs the proxy (default: %(default)s)")
    s.add_argument("--workers", type=int, nargs="?", const=os.cpu_count() or 1, default=0, metavar="N",
                   help="run a production tier: HAProxy and nginx (hits straight from disk, package-file misses "
                   "fetched and stored by nginx) in front of N pkgcache workers that decide every request "
                   "(N defaults to the number of cores); without it, one embedded proxy")
    s.set_defaults(func=_serve)
    ls = sub.add_parser("ls", help="list cached files")
    ls.add_argument("--bytes", action="store_true", help="sizes as exact byte counts instead of KiB/MiB/GiB")
    ls.add_argument("--limit", type=int, metavar="N",
                    help="only the first N entries in key order (as quick in a cache of millions as of a few)")
    ls.set_defaults(func=_ls)
    f = sub.add_parser("fetch", help="download a datastore's wanted list and stated packages, with their dependencies (on a connected machine)")
    f.add_argument("datastore", help="the datastore folder (e.g. the stick's pkgcache/ folder)")
    f.add_argument("--proxy", help="HTTP proxy to download through, e.g. http://proxy.example:3128")
    f.add_argument("--jobs", type=int, default=4, help="downloads at once (default: %(default)s)")
    f.add_argument("--retries", type=int, default=3, help="retries of a transient error (default: %(default)s)")
    f.add_argument("--no-expand", action="store_true",
                   help="fetch only the wanted URLs, not the indexes a fetched InRelease names")
    f.add_argument("--arch", help="Debian architectures to fetch indexes for (default: from the wanted list)")
    f.add_argument("--all-indexes", action="store_true",
                   help="every component and translation of a fetched suite, not only those the offline clients "
                        "use (their stated index targets, or the indexes they were seen asking for)")
    f.add_argument("-v", "--verbose", action="store_true", help="a line per file, not only for failures")
    f.add_argument("--cacert", metavar="FILE", help="CA certificates (PEM) upstream HTTPS must be signed by "
                   "(default: SSL_CERT_FILE, else the system store)")
    f.set_defaults(func=_fetch)
    w = sub.add_parser("want", help="on an offline machine: state packages to bring, with their dependencies, in "
                                    "one fetch trip")
    w.add_argument("packages", nargs="*", help="package names as apt-get install takes them (name, name=version)")
    w.add_argument("--proxy", required=True, help="the offline pkgcache, e.g. http://proxy.example:8080")
    w.add_argument("--status", help="the dpkg status (with --rpm: the rpmdb.sqlite) to send (default: where "
                                    "apt-config, or rpm, says it is)")
    w.add_argument("--no-status", action="store_true",
                   help="send no dpkg status: fetch brings everything, as for a machine with nothing installed")
    w.add_argument("--arch", help="the client's architectures (default: from apt-get indextargets)")
    w.add_argument("--no-recommends", action="store_true",
                   help="the client installs without Recommends (weak dependencies for --rpm)")
    w.add_argument("--rpm", action="store_true",
                   help="a dnf or zypper machine: sends its architecture and rpmdb.sqlite (where rpm keeps one)")
    w.add_argument("--repo", action="append", metavar="URL",
                   help="with --rpm: a repository's base URL (repeatable; default: the repositories this machine "
                        "was seen asking for)")
    w.add_argument("--oci", action="append", metavar="IMAGE",
                   help="a container image to bring with all its layers, as [http://]REGISTRY/NAME:TAG "
                        "(repeatable; HTTPS unless http:// is given)")
    w.set_defaults(func=_want)
    e = sub.add_parser("expire", help="delete cached files no cached index references, after a grace period")
    e.add_argument("--grace-days", type=float, default=4.0, help="days an orphan is kept (default: %(default)s)")
    e.add_argument("--now", action="store_true", help="skip the grace period")
    e.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    e.set_defaults(func=_expire)
    v = sub.add_parser("verify", help="check cached files against the indexes' sizes and SHA-256 sums")
    v.add_argument("--fix", choices=["delete", "truncate"], help="what to do with damaged files (default: report)")
    v.set_defaults(func=_verify)
    im = sub.add_parser("import", help="place package files from a folder where clients will find them")
    im.add_argument("dir", help="folder of package files (e.g. a copy of /var/cache/apt/archives), or with "
                    "--datastore a datastore's folder")
    im.add_argument("--datastore", action="store_true",
                    help="DIR is a datastore (a stick's pkgcache/ folder): take all of it, verified, whether or "
                         "not this site asked for it")
    im.add_argument("--rules", metavar="DIR", help="with --datastore: the rules folder the proxy uses "
                    "(pkgcache_rules), if not the shipped one")
    im.add_argument("--keyrings", default="", metavar="PATHS", help="with --datastore: the keyrings every signed "
                    "index must verify against, as pkgcache_keyrings takes them (default: Debian's and Ubuntu's "
                    "archives against /usr/share/keyrings)")
    im.set_defaults(func=_import)
    pc = sub.add_parser("precache", help="download every package the selected cached indexes list",
                        description="Select cached indexes by Debian suite, component and architecture (also "
                        "when apt fetched them by-hash), or by shell patterns on their URLs or cache keys.")
    pc.add_argument("patterns", nargs="*", help="shell patterns on index URLs or cache keys, "
                    "e.g. '*/dists/*/main/binary-amd64/Packages*'")
    pc.add_argument("--suite", action="append", help="Debian suite(s), e.g. bookworm (repeat or comma-separate)")
    pc.add_argument("--component", action="append", help="component(s), e.g. main")
    pc.add_argument("--arch", action="append", help="architecture(s), e.g. amd64, all or source")
    pc.add_argument("--proxy", default="http://127.0.0.1:8080", help="the running pkgcache (default: %(default)s)")
    pc.add_argument("--jobs", type=int, default=4, help="downloads at once (default: %(default)s)")
    pc.add_argument("--estimate", action="store_true", help="only print how many files and bytes")
    pc.add_argument("-v", "--verbose", action="store_true", help="a line per file, not only for failures")
    pc.set_defaults(func=_precache)
    rl = sub.add_parser("releases", help="list cached distribution releases, or remove one")
    rl.add_argument("action", nargs="?", choices=["list", "remove"], default="list",
                    help="list (default) or remove a release's index files")
    rl.add_argument("name", nargs="?", help="the release to remove: SUITE or ROOT:SUITE as listed")
    rl.set_defaults(func=_releases)
    pn = sub.add_parser("pin", help="list, add or remove patterns of files expire and the size limit never delete")
    pn.add_argument("patterns", nargs="*", help="shell patterns on cache keys or URLs, e.g. '*/pool/main/l/linux/*'")
    pn.add_argument("--remove", action="store_true", help="unpin the given patterns instead of pinning them")
    pn.set_defaults(func=_pin)
    m = sub.add_parser("mirrors", help="mirror list tools")
    msub = m.add_subparsers(dest="mcmd", required=True)
    mi = msub.add_parser("import", help="turn a Debian Mirrors.masterlist into a merge list (Remap-NAME: file:...)")
    mi.add_argument("file", help="the Mirrors.masterlist file")
    mi.add_argument("-o", "--output", help="write the list here (default: standard output)")
    mi.set_defaults(func=_mirrors_import)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd != "serve":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra)
    except BrokenPipeError:  # `pkgcache ls | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
