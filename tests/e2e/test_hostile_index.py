"""A hostile index through a running proxy (both setups) and through maintenance: refused and logged, with
bounded memory, while other clients' hits go on.  The parsers' own bounds: tests/unit/test_index_bounds.py."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from support.origin import Origin
from support.proxy import Proxy, wait_for
from support.tier import TierProcess

MIB = 1 << 20
INDEX = "/debian/dists/stable/main/binary-amd64/Packages.gz"
DEB = "/other/pool/main/h/hello/hello_1.0_all.deb"


def _endless_line_gz(inflated: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(b"Package: x\nFilename: pool/x.deb\nDescription: ")]
    block = b"a" * MIB
    for _ in range(inflated // MIB):
        out.append(z.compress(block))
    return b"".join(out) + z.flush()


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_an_index_of_one_endless_line_is_refused_and_hits_go_on(origin: Origin, tmp_path: Path, setup: str) -> None:
    body = _endless_line_gz(256 * MIB)
    assert len(body) < 512 * 1024
    origin.put(INDEX, body)
    origin.put(DEB, b"a package\n" * 100)
    proxy = Proxy(tmp_path / "cache") if setup == "embedded" else TierProcess(tmp_path / "cache", 1)
    try:
        with proxy.client() as c:
            assert c.get(origin.base + DEB).status_code == 200
            r = c.get(origin.base + INDEX)
            assert r.status_code == 200 and r.content == body  # passed on as the mirror sent it
            wait_for(lambda: "line longer than" in proxy.log_text(), timeout=60, what="the refusal in the log")
            for _ in range(20):
                r = c.get(origin.base + DEB)
                assert r.status_code == 200 and r.headers["x-cache"] == "HIT"
        if isinstance(proxy, Proxy):
            assert _peak_kib(proxy.proc.pid) < 300 * 1024
    finally:
        proxy.stop()
    assert "Traceback" not in proxy.log_text(), proxy.log_text()


def test_maintenance_reads_a_hostile_apkindex_in_bounded_memory(origin: Origin, tmp_path: Path) -> None:
    """A 64 KiB APKINDEX.tar.gz that inflates to 64 MiB of one line: `pkgcache expire` refuses that root
    and says why, in bounded memory."""
    class Endless(io.RawIOBase):
        left = 64 * MIB

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), self.left)
            b[:n] = b"z" * n
            self.left -= n
            return n

    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("APKINDEX")
        info.size = 64 * MIB
        tar.addfile(info, io.BufferedReader(Endless()))
    path = "/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"
    origin.put(path, buf.getvalue())
    proxy = Proxy(tmp_path / "cache")
    try:
        with proxy.client() as c:
            assert c.get(origin.base + path).status_code == 200
    finally:
        proxy.stop()
    # a fresh parent whose one child is the command: its children's peak is the command's own
    measure = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", measure, "pkgcache", "--cache-dir", str(tmp_path / "cache"),
                        "expire", "--dry-run"], capture_output=True, text=True, timeout=300)
    peak = int(r.stderr.rsplit("PEAK ", 1)[1].split()[0])
    out = r.stdout + r.stderr
    # refused, said so (and the exit status says a root was left alone), nothing under it deleted
    assert r.returncode == 1 and "cannot parse APKINDEX: a line longer than" in out and "0 deleted" in out, out
    assert peak < 300 * 1024, f"peak RSS {peak} KiB"
