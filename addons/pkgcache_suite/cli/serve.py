"""`pkgcache serve`: exec mitmdump (or mitmweb, or the tier's supervisor) with the suite's script loaded.

It only execs the front end, so every mitmproxy flag keeps working and there is one way the proxy
starts; what it checks first is what mitmproxy would say in its own, less helpful, words.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from pathlib import Path

ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "entry" / "pkgcache.py"  # shipped with the package


def serve(args: argparse.Namespace, extra: list[str]) -> int:
    # the front end installed beside this Python (the virtual environment's), not another one on PATH
    beside = Path(sys.executable).parent / args.tool
    tool = str(beside) if beside.is_file() else shutil.which(args.tool)
    if tool is None:
        print(f"pkgcache: {args.tool} not found beside {sys.executable} or on PATH (pip install mitmproxy)",
              file=sys.stderr)
        return 2
    if not ENTRY_SCRIPT.is_file():
        print(f"pkgcache: entry script {ENTRY_SCRIPT} missing: the installation is incomplete; reinstall pkgcache",
              file=sys.stderr)
        return 2
    # mitmproxy refuses an option set twice, and would then run without pkgcache: the cache root is given
    # once, by --set if the arguments for mitmdump name it, else from --cache-dir / PKGCACHE_DIR
    named = [a.partition("=")[2] for a in extra if a.startswith("pkgcache_dir=")]
    if args.workers:
        from pkgcache_suite.tier.supervisor import run_tier

        if args.tool != "mitmdump":
            print("pkgcache serve: --workers runs mitmdump workers; inspect one with mitmweb on its own",
                  file=sys.stderr)
            return 2
        extra = [a for i, a in enumerate(extra) if not a.startswith("pkgcache_dir=")
                 and not (a == "--set" and i + 1 < len(extra) and extra[i + 1].startswith("pkgcache_dir="))]
        return run_tier(Path(named[-1] if named else args.cache_dir).expanduser(), args.workers, extra, tool,
                        ENTRY_SCRIPT)
    taken = port_taken(extra)
    if taken:
        print(f"pkgcache serve: {taken}", file=sys.stderr)
        return 2
    argv = [tool, "-s", str(ENTRY_SCRIPT), *([] if named else ["--set", f"pkgcache_dir={args.cache_dir}"]), *extra]
    # every log line reaches a pipe or the journal as it is written, not when a buffer fills
    os.execve(tool, argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    return 0  # not reached


def port_taken(extra: list[str]) -> str | None:
    """Why the listening port cannot be had (another pkgcache or proxy holds it), or None.  Said in
    pkgcache's words before mitmdump starts, whose own message suggests a different mode instead."""
    import socket

    if any(a == "--mode" or a.startswith("--mode=") for a in extra):
        return None  # each mode names its own address
    def value(flag: str, default: str) -> str:
        for i, a in enumerate(extra):
            if a == flag and i + 1 < len(extra):
                default = extra[i + 1]
            elif a.startswith(flag + "="):
                default = a.partition("=")[2]
        return default
    host, port = value("--listen-host", ""), value("--listen-port", "8080")
    if not port.isdigit():
        return None  # mitmdump says what is wrong with it
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (f"port {port} is in use (another pkgcache or proxy?); stop it, or listen on another port "
                        f"with --listen-port N")
    return None


