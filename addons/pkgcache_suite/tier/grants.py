"""Grants: nginx fetches a miss only for a worker that asked for exactly that download.

A worker handing a miss to nginx (transfer/frontfetch.py) names a token, the
upstream address it resolved and checked, and the Host.  Before answering, it
creates the grant ``grants/TOKEN/ADDRESS/HOST`` in the tier's run folder;
nginx's fetch location refuses (403, logged) any redirect whose grant file is
not there, so a forged token, a real token with another address, or a token
whose download has ended gets nothing.  The worker removes the grant as soon
as nginx has logged the download (or it gave the download up), so a token is
good for one fetch; the supervisor removes the grants of workers that died.

A tree rather than one file name: a Host may be 253 characters, more than a
file name holds once the token and address are added.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pkgcache_suite.tier.landing import owner, process_alive

GRANTS = "grants"


def grant_path(run: Path, token: str, target: str, authority: str) -> Path:
    """Where nginx looks for the grant of a redirect to ``/.pkgcache-fetch/TOKEN/TARGET/AUTHORITY``."""
    for part in (token, target, authority):
        if not part or "/" in part or part in (".", "..") or "\0" in part:
            raise ValueError(f"not a grant name: {part!r}")
    return run / GRANTS / token / target / authority


def give(run: Path, token: str, target: str, authority: str) -> Path:
    """Create the grant; the token is new, so an existing one means something else made it: refuse."""
    path = grant_path(run, token, target, authority)
    path.parent.mkdir(parents=True, exist_ok=False, mode=0o755)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    return path


def take_back(run: Path, token: str) -> None:
    """The download ended (or was given up): the token fetches nothing more."""
    shutil.rmtree(run / GRANTS / token, ignore_errors=True)


def sweep_grants(run: Path) -> int:
    """Remove the grants of workers that are gone (killed, restarted) and anything that is not a grant;
    returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(run / GRANTS))
    except OSError:
        return 0
    for e in entries:
        pid = owner(e.name)
        if pid is not None and process_alive(pid) and e.is_dir(follow_symlinks=False):
            continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            try:
                os.unlink(e.path)
            except OSError:
                continue
        removed += 1
    return removed
