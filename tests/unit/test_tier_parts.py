"""The tier's pure parts: what the front's configuration says, which arguments go where, how the front's hit
log becomes counters."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pkgcache_suite.stats import Stats
from pkgcache_suite.tier.args import TierArgsError, split_args
from pkgcache_suite.tier.config import Tier, haproxy_cfg, nginx_conf
from pkgcache_suite.tier.frontlog import FrontLog


def _tier(tmp: Path, **kw) -> Tier:
    return Tier(listen_host="", listen_port=3142, workers=[4001, 4002], nginx_port=4003, published=tmp / "front",
                run_dir=tmp, **kw)


def test_haproxy_sends_plain_gets_to_nginx_and_the_rest_to_the_workers(tmp_path: Path) -> None:
    cfg = haproxy_cfg(_tier(tmp_path))
    assert "bind *:3142" in cfg
    assert "use_backend files if get_or_head absolute !has_query" in cfg and "default_backend workers" in cfg
    assert "balance uri whole" in cfg and "hash-type consistent" in cfg
    assert "server w0 127.0.0.1:4001" in cfg and "server w1 127.0.0.1:4002" in cfg
    assert "http-request del-header X-Forwarded-For" in cfg and "option forwardfor" in cfg
    assert "allowed_client" not in cfg and "allowed_port" not in cfg  # no rules given: none enforced


@pytest.mark.parametrize("clients,ports,expect,absent", [
    (["192.0.2.0/24"], None, "acl allowed_client src 192.0.2.0/24", "allowed_port"),
    ([], {80, 443}, "acl allowed_port url_port 80 443", "allowed_client"),
    ([], {0}, "", "allowed_port"),  # 0: any port
])
def test_access_rules_become_the_fronts(tmp_path: Path, clients: list[str], ports: set[int] | None, expect: str,
                                        absent: str) -> None:
    cfg = haproxy_cfg(_tier(tmp_path, allow_clients=[ipaddress.ip_network(c) for c in clients], allow_ports=ports))
    assert expect in cfg and absent not in cfg


def test_nginx_serves_the_published_tree_and_passes_the_rest(tmp_path: Path) -> None:
    conf = nginx_conf(_tier(tmp_path, user="root"))
    assert f"root {tmp_path / 'front'};" in conf and "try_files /$pkgcache_origin$uri @workers;" in conf
    assert "open_file_cache off;" in conf and "disable_symlinks on;" in conf
    assert "hash $http_x_pkgcache_authority$request_uri consistent;" in conf
    assert "proxy_buffering off;" in conf and "user root;" in conf
    assert "add_header X-Cache HIT always;" in conf


@pytest.mark.parametrize("extra,host,port,workers", [
    ([], "", 8080, []),
    (["--listen-host", "192.0.2.10", "-p", "3142"], "192.0.2.10", 3142, []),
    (["--listen-port=3142", "--set", "pkgcache_allow_clients=10.0.0.0/8"], "", 3142,
     ["--set", "pkgcache_allow_clients=10.0.0.0/8"]),
    (["--mode", "regular", "--set", "a=b", "-v"], "", 8080, ["--set", "a=b", "-v"]),
])
def test_split_args(extra: list[str], host: str, port: int, workers: list[str]) -> None:
    a = split_args(extra)
    assert (a.listen_host, a.listen_port, a.worker_args) == (host, port, workers)


@pytest.mark.parametrize("extra", [["--mode", "transparent"], ["-p", "http"], ["--listen-port", "99999"]])
def test_split_args_refuses(extra: list[str]) -> None:
    with pytest.raises(TierArgsError):
        split_args(extra)


def test_the_fronts_hit_log_becomes_hits_once(tmp_path: Path) -> None:
    log = tmp_path / "front-hits.log"
    stats = Stats(tmp_path)
    reopened: list[bool] = []
    used: list[dict[str, float]] = []
    front = FrontLog(log, stats, lambda: reopened.append(True), lambda batch: used.append(dict(batch)))
    log.write_text("1.0 200 1000 10.1.2.3 http://mirror.example/debian/pool/a.deb\n"
                   "1.1 206 10 10.1.2.3 http://mirror.example:8080/debian/pool/b.deb\n"
                   "1.2 416 0 10.1.2.3 http://mirror.example/debian/pool/a.deb\n"
                   "garbage\n"
                   "1.3 200 5 10.1.2.3 http://mirror.example/debian/pool/c")  # still being written
    assert front.read() == 2
    assert front.read() == 0  # nothing counted twice
    with open(log, "a") as f:
        f.write(".deb\n")
    assert front.read() == 1
    snap = stats.snapshot()
    assert snap["total"]["hit"] == 3 and snap["total"]["bytes_from_cache"] == 1015
    assert snap["by_client"]["10.1.2.0/24"]["hit"] == 3 and "mirror.example_8080" in snap["by_repo"]
    # what the front served counts as used for the size limit's least-recently-used order, once per read
    assert [sorted(b) for b in used] == [["mirror.example/debian/pool/a.deb", "mirror.example_8080/debian/pool/b.deb"],
                                         ["mirror.example/debian/pool/c.deb"]]


def test_a_large_hit_log_is_rotated_without_losing_lines(tmp_path: Path, monkeypatch) -> None:
    from pkgcache_suite.tier import frontlog

    monkeypatch.setattr(frontlog, "ROTATE_AT", 100)
    monkeypatch.setattr(frontlog, "SETTLE", 0.0)
    log = tmp_path / "front-hits.log"
    stats = Stats(tmp_path)
    reopened: list[bool] = []
    front = FrontLog(log, stats, lambda: reopened.append(True))
    line = "1.0 200 1 10.1.2.3 http://mirror.example/debian/pool/a.deb\n"
    log.write_text(line * 3)
    assert front.read() == 3 and reopened == [True] and not log.exists()
    old = log.with_suffix(".old")
    with open(old, "a") as f:  # nginx wrote one more line before it reopened
        f.write(line)
    log.write_text(line)
    assert front.read() == 2 and not old.exists()
    assert stats.snapshot()["total"]["hit"] == 5


def test_a_child_that_keeps_dying_stops_the_tier(tmp_path: Path) -> None:
    import time

    from pkgcache_suite.tier.args import TierArgs
    from pkgcache_suite.tier.supervisor import CRASH_LIMIT, Child, Supervisor

    sup = Supervisor(tmp_path, 1, TierArgs(), "mitmdump", tmp_path / "pkgcache.py")
    child = Child("worker 0", ["false"], 1)
    sup.children.append(child)
    child.start()
    for _ in range(CRASH_LIMIT + 1):
        assert child.proc is not None
        child.proc.wait(10)
        sup._keep_alive()
        time.sleep(0.01)
    assert sup.failed and sup.stopping and child.restarts == CRASH_LIMIT


def test_grants_are_one_per_download_and_die_with_their_worker(tmp_path: Path) -> None:
    """A grant names exactly one token, address and Host; taking it back, or the worker's death, ends it;
    names that would leave the grant tree are refused."""
    import os



    from pkgcache_suite.tier.grants import give, grant_path, sweep_grants, take_back

    mine = f"{os.getpid():08x}" + "ab" * 12
    dead = f"{0x7ffffffe:08x}" + "cd" * 12  # no such process
    assert give(tmp_path, mine, "192.0.2.7:80", "mirror.example").is_file()
    with pytest.raises(FileExistsError):
        give(tmp_path, mine, "192.0.2.7:80", "mirror.example")  # a token is given once
    give(tmp_path, dead, "[2001:db8::1]:8080", "mirror.example:8080")
    (tmp_path / "grants" / "stray").write_text("")
    for bad in ("..", ".", "a/b", ""):
        with pytest.raises(ValueError):
            grant_path(tmp_path, mine, bad, "mirror.example")
    assert sweep_grants(tmp_path) == 2  # the dead worker's and the stray file
    assert sorted(p.name for p in (tmp_path / "grants").iterdir()) == [mine]
    take_back(tmp_path, mine)
    assert list((tmp_path / "grants").iterdir()) == []
