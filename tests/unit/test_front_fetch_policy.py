"""The pure parts of misses the tier's nginx fetches: which requests go that way, what nginx's line says
happened, which landed files are orphans, and what the generated configuration holds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pkgcache_suite.policy.frontfetch import FrontFacts, may_fetch, may_redirect, next_speed, quick_enough
from pkgcache_suite.tier.config import Tier, haproxy_cfg, nginx_conf
from pkgcache_suite.tier.protocol import ENGINE, FETCH_PREFIX, HIT_LOCATION
from pkgcache_suite.tier.fetchlog import Outcome, outcome, parse_line
from pkgcache_suite.tier.landing import orphaned, owner

KEY = "mirror.example/debian/pool/main/h/hello/hello_1.0_amd64.deb"
PLAIN = FrontFacts(enabled=True, front_path=KEY, key=KEY, publishable=True, method="GET", scheme="http",
                   headers=frozenset({"host", "user-agent", "accept"}))


@pytest.mark.parametrize("change, fetch, redirect", [
    ({}, True, True),
    ({"enabled": False}, False, False),
    ({"front_path": None}, False, False),  # not through nginx (HAProxy sent it straight, or no tier)
    ({"front_path": KEY + "x"}, False, False),  # nginx would look for it elsewhere
    ({"publishable": False}, False, False),
    ({"method": "HEAD"}, False, True),
    ({"scheme": "https"}, False, True),
    ({"headers": frozenset({"range"})}, False, True),
    ({"headers": frozenset({"if-modified-since"})}, False, True),
    ({"headers": frozenset({"if-none-match"})}, False, True),
    ({"remapped": True}, False, True),
    ({"via_proxy": True}, False, True),
])
def test_which_requests_nginx_carries(change: dict, fetch: bool, redirect: bool) -> None:
    facts = replace(PLAIN, **change)
    assert (may_fetch(facts) is None) is fetch
    assert (may_redirect(facts) is None) is redirect
    if not fetch:
        assert may_fetch(facts)  # a reason, for the log


TOKEN = "0000abcd" + "1" * 24


def _line(status: str = "200", upstream: str = "200", got: str = "1234", header_time: str = "0.001",
          length: str = "1000", etag: str = r"\x22abc\x22") -> str:
    return "\t".join([TOKEN, status, upstream, got, header_time, length, "-", "application/vnd.debian.binary-package",
                      "-", "-", "Thu, 26 Nov 2026 04:17:03 GMT", etag, "1000", "0.250"])


def test_a_line_is_read_with_nginxs_escapes_undone() -> None:
    rec = parse_line(_line())
    assert rec is not None and rec.token == TOKEN and rec.status == 200 and rec.upstream_status == 200
    assert rec.answered and rec.upstream_bytes == 1234 and rec.sent == 1000 and rec.upstream_time == 0.25
    assert rec.headers == {"content-length": "1000", "content-type": "application/vnd.debian.binary-package",
                           "last-modified": "Thu, 26 Nov 2026 04:17:03 GMT", "etag": '"abc"'}


@pytest.mark.parametrize("line", ["", "garbage", _line().replace(TOKEN, "../../etc"), _line()[:-5] + "\tx\ty",
                                  "1795666627.785 200 200 : 200 209"])
def test_other_lines_are_not_ours(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize("kw, landed, expect", [
    ({}, True, Outcome.LANDED),
    ({}, False, Outcome.BROKEN),  # nginx stores only a whole body: no file, not whole
    ({"upstream": "404", "status": "404"}, False, Outcome.MISSING),
    ({"upstream": "503", "status": "503"}, False, Outcome.ANSWERED),
    ({"upstream": "502", "status": "502", "header_time": "-", "got": "0"}, False, Outcome.UNREACHABLE),
    ({"upstream": "504", "status": "504", "header_time": "-", "got": "0"}, False, Outcome.UNREACHABLE),
    ({"upstream": "-", "status": "499", "header_time": "-"}, False, Outcome.UNREACHABLE),
    # as nginx logs it: the worker's answer (the redirect), then the origin's
    ({"upstream": "200 : 502", "status": "502", "header_time": "0.010 : -", "got": "154 : 0"}, False,
     Outcome.UNREACHABLE),
    ({"upstream": "200 : 404", "status": "404", "header_time": "0.010 : 0.001"}, False, Outcome.MISSING),
])
def test_what_nginxs_line_says_happened(kw: dict, landed: bool, expect: Outcome) -> None:
    rec = parse_line(_line(**kw))
    assert rec is not None and outcome(rec, landed) is expect


@pytest.mark.parametrize("name, age, alive, expect", [
    (TOKEN, 5.0, False, False),  # just landed: its worker may still take it
    (TOKEN, 120.0, True, False),  # its worker lives: it takes it
    (TOKEN, 120.0, False, True),  # its worker is gone
    ("stray", 120.0, True, True),  # not a token at all
])
def test_which_landed_files_are_orphans(name: str, age: float, alive: bool, expect: bool) -> None:
    assert orphaned(name, age, alive) is expect


def test_a_tokens_owner_is_its_worker() -> None:
    assert owner(TOKEN) == 0xABCD and owner("x" * 32) is None


def test_the_configuration_fetches_stores_and_hands_over(tmp_path: Path) -> None:
    t = Tier(listen_host="", listen_port=3142, workers=[4001], nginx_port=4003, published=tmp_path / "front",
             run_dir=tmp_path, connect_timeout=7, idle_timeout=9)
    conf = nginx_conf(t)
    fetch = conf[conf.index(FETCH_PREFIX.replace(".", "[.]")):]
    fetch = fetch[:fetch.index("\n        }\n")]
    assert "internal;" in fetch and f"proxy_store {tmp_path}/landing/$pkgcache_token;" in fetch
    assert "proxy_pass_request_headers off;" in fetch  # no tier header, no client conditional goes upstream
    assert "proxy_ignore_client_abort on;" in fetch and "proxy_read_timeout 9s;" in fetch
    assert "proxy_connect_timeout 7s;" in fetch and "add_header X-Cache MISS always;" in fetch
    assert f"location {HIT_LOCATION}" in conf and f"proxy_set_header {ENGINE} $pkgcache_engine;" in conf
    assert "1 $pkgcache_origin$uri;" in conf  # the published path, for a plain request target only
    assert f"del-header {ENGINE}" in haproxy_cfg(t)  # a client cannot say it


def test_nginx_obeys_no_upstream_and_fetches_only_what_was_granted(tmp_path: Path) -> None:
    """The fetch location checks the worker's grant before anything, ignores and hides every X-Accel-*
    header of the origin and replaces its X-Cache; the workers' location obeys only X-Accel-Redirect."""
    from pkgcache_suite.tier.protocol import ACCEL

    t = Tier(listen_host="", listen_port=3142, workers=[4001], nginx_port=4003, published=tmp_path / "front",
             run_dir=tmp_path)
    conf = nginx_conf(t)
    fetch = conf[conf.index(FETCH_PREFIX.replace(".", "[.]")):]
    fetch = fetch[:fetch.index("\n        }\n")]
    grant = f"if (!-f {tmp_path}/grants/$pkgcache_token/$pkgcache_addr/$pkgcache_host)"
    assert fetch.index(grant) < fetch.index("proxy_pass ")
    assert f"proxy_ignore_headers {' '.join(ACCEL)};" in fetch
    assert all(f"proxy_hide_header {h};" in fetch for h in ACCEL) and "proxy_hide_header X-Cache;" in fetch
    workers = conf[conf.index("location @workers"):]
    assert f"proxy_ignore_headers {' '.join(ACCEL[1:])};" in workers
    assert "if ($pkgcache_plain = 0) { return 418; }" in conf  # odd targets go to the workers, unlooked-up
    h = haproxy_cfg(t)
    assert "if get_or_head { req.hdr_cnt(transfer-encoding) gt 0 }" in h
    assert h.index("req.hdr_cnt(transfer-encoding)") < h.index("use_backend")


def test_the_fetch_log_is_followed_across_a_rotation(tmp_path: Path, monkeypatch) -> None:
    """The supervisor renames a large fetch log and nginx reopens a fresh one; a worker reads every line of
    both exactly once, including one nginx wrote to the old file after the new one appeared."""
    from pkgcache_suite.context import CacheContext
    from pkgcache_suite.tier.protocol import FETCH_LOG
    from pkgcache_suite.tier.frontlog import rotate_if_large
    from pkgcache_suite.transfer import frontfetch
    from pkgcache_suite.transfer.frontfetch import FrontFetches

    def line(n: int) -> str:
        return _line().replace(TOKEN, f"{n:032x}") + "\n"

    log = tmp_path / FETCH_LOG
    log.write_text(line(1))  # before this worker asked anything: not its business
    ff = FrontFetches(CacheContext(), None, None, None, None, None)  # type: ignore[arg-type]
    assert ff._open_log(tmp_path)
    with open(log, "a") as f:
        f.write(line(2) + line(3)[:20])  # the last one still being written
    assert [r.token for r in ff._read_records(tmp_path)] == [f"{2:032x}"]
    with open(log, "a") as f:
        f.write(line(3)[20:])
    reopened: list[bool] = []
    assert rotate_if_large(log, lambda: reopened.append(True), limit=10) and reopened
    assert [r.token for r in ff._read_records(tmp_path)] == [f"{3:032x}"]  # renamed, not yet reopened
    log.write_text(line(5))  # nginx reopened
    with open(log.with_suffix(".old"), "a") as f:
        f.write(line(4))  # one of its workers had not yet
    assert sorted(r.token for r in ff._read_records(tmp_path)) == [f"{4:032x}", f"{5:032x}"]
    monkeypatch.setattr(frontfetch, "LOG_SETTLE", 0.0)
    with open(log, "a") as f:
        f.write(line(6))
    assert [r.token for r in ff._read_records(tmp_path)] == [f"{6:032x}"]
    assert ff._old is None and ff._read_records(tmp_path) == []
    ff.stop()
    assert ff._fd == -1


MB = 1 << 20


@pytest.mark.parametrize("size, speed, quick", [
    (100 * MB, None, True),  # not yet measured: assumed fast
    (100 * MB, 100e6, True),  # a LAN mirror: about a second
    (100 * MB, 2e6, False),  # a slow uplink: nearly a minute, clients joining it would get nothing meanwhile
    (1 * MB, 2e6, True),
    (None, 2e6, True),  # unknown size: assumed a large package (8 MiB), 4 s here
    (None, 0.5e6, False),
    (1 * MB, 0.0, False),
])
def test_slow_downloads_stay_with_the_worker(size: int | None, speed: float | None, quick: bool) -> None:
    assert quick_enough(size, speed) is quick


@pytest.mark.parametrize("previous, nbytes, seconds, expect", [
    (None, 4 * MB, 2.0, 2 * MB),
    (2 * MB, 8 * MB, 2.0, 3 * MB),  # averaged with what was measured before
    (2 * MB, 1000, 0.001, 2 * MB),  # too small to tell
    (2 * MB, 4 * MB, None, 2 * MB),  # nginx logged no time
    (None, 4 * MB, 0.0, None),
])
def test_an_origins_speed_is_a_moving_average(previous: float | None, nbytes: int, seconds: float | None,
                                              expect: float | None) -> None:
    assert next_speed(previous, nbytes, seconds) == expect


@pytest.mark.parametrize("headers,alike", [
    ([], True),
    ([("Range", "bytes=100-199")], True), ([("Range", "bytes=100-")], True), ([("Range", "bytes=-5")], True),
    ([("Range", "bytes=5-1")], False),  # invalid: the worker ignores it, nginx answers 416
    ([("Range", "bytes=-0")], False), ([("Range", "bytes=0-0,1-1")], False), ([("Range", "bytes = 0 - 5")], False),
    ([("Range", "bytes=" + "9" * 19 + "-")], False), ([("Range", "items=0-5")], False),
    ([("Range", "bytes=1-2"), ("Range", "bytes=3-4")], False),
    ([("Range", "bytes=0-"), ("If-Range", '"abc"')], True),
    ([("Range", "bytes=0-"), ("If-Range", "Sun, 06 Dec 2026 18:00:00 GMT")], True),
    ([("If-Range", 'W/"weak"')], False), ([("If-Range", "garbage")], False),
    ([("If-Modified-Since", "Sun, 06 Dec 2026 18:00:00 GMT")], True),
    ([("If-Modified-Since", "not a date")], False), ([("If-Modified-Since", "Mon, " * 100)], False),
    ([("If-None-Match", '"a"')], False), ([("If-Match", "x")], False), ([("If-Unmodified-Since", "x")], False),
])
def test_nginx_serves_only_what_it_reads_as_the_worker_does(headers: list[tuple[str, str]], alike: bool) -> None:
    from pkgcache_suite.policy.frontfetch import nginx_reads_alike

    assert nginx_reads_alike(headers) is alike
    facts = FrontFacts(**{**PLAIN.__dict__, "read_alike": alike})
    assert (may_redirect(facts) is None) is alike
