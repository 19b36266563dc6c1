"""Remapping, failover, apt-cacher-ng config compatibility, mirror-style URLs and access control."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.debrepo import detach_sign, export_signing_key
from support.proxy import wait_for
from support.origin import Behaviour, Origin

from pkgcache_suite.repos.config import load_config, read_list_file

DEB = "/debian/pool/main/a/alpha/alpha_1.0_all.deb"
INREL = "/debian/dists/stable/InRelease"


@pytest.fixture
def mirrors(tmp_path: Path) -> Iterator[tuple[Origin, Origin]]:
    """Two origins carrying the same repository: two mirrors."""
    out = []
    for name in ("m1", "m2"):
        (tmp_path / name).mkdir()
        o = Origin(tmp_path / name).start()
        o.put(DEB, b"the same package")
        o.put(INREL, b"the same release")
        out.append(o)
    yield out[0], out[1]
    for o in out:
        try:
            o.stop()
        except Exception:
            pass


def _conf(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "acng.conf"
    p.write_text(text)
    return p


def test_merge_list_shares_one_cache_namespace(mirrors, start_proxy, tmp_path: Path) -> None:
    m1, m2 = mirrors
    (tmp_path / "mirrors.list").write_text(f"# one per line\n{m2.base}/debian\n")
    conf = _conf(tmp_path, f"Remap-debrep: {m1.base}/debian file:mirrors.list\n")
    proxy = start_proxy("--set", f"pkgcache_conf={conf}")
    with proxy.client() as c:
        assert c.get(m1.base + DEB).headers["x-cache"] == "MISS"
        r = c.get(m2.base + DEB)
    assert r.headers["x-cache"] == "HIT" and r.content == b"the same package"
    assert m2.log == []
    assert (proxy.cache_dir / "_repo_debrep" / "pool/main/a/alpha/alpha_1.0_all.deb").is_file()


def test_targets_fail_over_on_dead_5xx_and_keyfile_errors(mirrors, start_proxy, tmp_path: Path) -> None:
    m1, m2 = mirrors
    conf = _conf(tmp_path, f"Remap-debrep: /debian {m1.base}/debian ; {m1.base}/debian {m2.base}/debian ; "
                           "keyfile=InRelease\n")
    proxy = start_proxy("--set", f"pkgcache_conf={conf}", "--set", "pkgcache_probe_interval=0")
    with proxy.client() as c:
        # preferred target first
        assert c.get(m1.base + "/debian/pool/x/x_1_all.deb").status_code == 404  # plain 404: not a failure
        assert c.get(m1.base + DEB).status_code == 200
        assert m1.count(DEB) == 1 and m2.count(DEB) == 0
        # a key file failing on the preferred target marks it bad: the next request goes to the second
        m1.behaviours[INREL] = Behaviour(status=403)
        assert c.get(m1.base + INREL).status_code == 403
        wait_for(lambda: "marked bad" in proxy.log_text(), what="the target marked bad")
        r = c.get(m1.base + INREL)
        assert r.status_code == 200 and m2.count(INREL) == 1
    proxy.stop()
    # a dead preferred target is skipped before the request goes out (no 502)
    proxy2 = start_proxy("--set", f"pkgcache_conf={conf}", "--set", "pkgcache_probe_interval=0",
                         cache_dir=tmp_path / "cache2")
    m1.stop()
    with proxy2.client() as c:
        r = c.get(m1.base + DEB)
    assert r.status_code == 200 and r.content == b"the same package"
    assert m2.count(DEB) == 1


def test_5xx_marks_a_target_bad(mirrors, start_proxy, tmp_path: Path) -> None:
    m1, m2 = mirrors
    conf = _conf(tmp_path, f"Remap-debrep: {m1.base}/debian ; {m1.base}/debian {m2.base}/debian\n")
    proxy = start_proxy("--set", f"pkgcache_conf={conf}")
    m1.behaviours[DEB] = Behaviour(status=503)
    with proxy.client() as c:
        assert c.get(m1.base + DEB).status_code == 503
        r = c.get(m1.base + DEB)
    assert r.status_code == 200 and m2.count(DEB) == 1
    with proxy.client() as c:
        info = c.get("http://pkgcache/stats.json").json()["cache"]
    assert f"{m1.base}/debian" in info["bad_targets"]


def test_acng_config_directives_and_unsupported_lines_reported(tmp_path: Path, start_proxy, origin: Origin) -> None:
    (tmp_path / "backends_debian").write_text("http://mirror.example/debian/\n")
    (tmp_path / "Mirrors.masterlist").write_text(
        "Site: one.example\nArchive-http: /debian/\n\nSite: two.example\nArchive-ftp: /debian/\n\n"
        "Site: three.example\nArchive-http: /pub/debian/\n")
    conf = _conf(tmp_path, "\n".join([
        "# apt-cacher-ng configuration",
        "CacheDir: /var/cache/apt-cacher-ng",
        "Port: 3142",
        "Remap-debrep: file:Mirrors.masterlist /debian ; file:backends_debian ; keyfile=Release",
        "PassThroughPattern: ^(bugs\\.example|security\\.example):443$",
        "AllowUserPorts: 80 8080",
        "ForceManaged: 0",
        "Offlinemode: 0",
        "DontCache: /private/",
        "VfilePatternEx: ^/foo$",
        "Remap-bad: http://x.example ; ; deltasrc=http://y.example",
        "this is not a directive",
        "",
    ]))
    cfg = load_config([conf])
    repo = cfg.repos[0]
    assert repo.name == "debrep"
    assert repo.merge == ["one.example/debian", "three.example/pub/debian", "/debian"]
    assert repo.targets == ["http://mirror.example/debian"]
    assert repo.keyfiles[0].search("/dists/stable/Release")
    assert cfg.allow_ports == {80, 8080} and cfg.force_managed is False and cfg.offline is False
    assert cfg.passthrough[0].search("bugs.example:443")
    problems = "\n".join(cfg.problems)
    assert f"{conf}:10: VfilePatternEx is not supported" in problems
    assert f"{conf}:11: Remap option 'deltasrc=http://y.example' is not supported" in problems
    assert f"{conf}:12: not a 'Key: value' line" in problems
    assert any("CacheDir" in n and ":2:" in n for n in cfg.notes)
    # and mitmdump reports them at start
    proxy = start_proxy("--set", f"pkgcache_conf={conf}")
    wait_for(lambda: "VfilePatternEx is not supported" in proxy.log_text(), what="the report at start")
    wait_for(lambda: "acng.conf:12" in proxy.log_text(), what="line 12 reported")


def test_mirrors_import_turns_a_masterlist_into_a_merge_list(tmp_path: Path) -> None:
    ml = tmp_path / "Mirrors.masterlist"
    ml.write_text("Site: one.example\nType: Push-Primary\nArchive-http: /debian/\nArchive-architecture: amd64\n\n"
                  "Site: two.example\nArchive-rsync: debian/\n\n"
                  "Site: three.example\nArchive-http: /pub/debian/\n")
    out = tmp_path / "debian_mirrors"
    r = subprocess.run(["pkgcache", "mirrors", "import", str(ml), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text().split() == ["http://one.example/debian/", "http://three.example/pub/debian/"]
    assert read_list_file(out.read_text()) == ["http://one.example/debian/", "http://three.example/pub/debian/"]
    assert "2 mirrors" in r.stdout


def test_refusals_are_clear_403s_and_logged(origin: Origin, start_proxy, tmp_path: Path) -> None:
    origin.put(DEB, b"x")
    conf = _conf(tmp_path, f"Remap-debrep: {origin.base}/debian\nAdminAuth: admin:s3cret\n")
    # default ports (80, 443): the origin's random port is refused
    proxy = start_proxy("--set", "pkgcache_allow_ports=80,443")
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.status_code == 403 and f"port {origin.port} is not allowed" in r.text
    wait_for(lambda: "refused GET" in proxy.log_text(), what="the refusal logged")
    proxy.stop()
    # ForceManaged: only the configured repository
    proxy = start_proxy("--set", f"pkgcache_conf={conf}", "--set", "pkgcache_force_managed=true",
                        cache_dir=tmp_path / "c2")
    with proxy.client() as c:
        assert c.get(origin.base + DEB).status_code == 200
        r = c.get(origin.base + "/other/file.deb")
        assert r.status_code == 403 and "ForceManaged" in r.text
        # the admin action needs the password and the page's CSRF token
        good = base64.b64encode(b"admin:s3cret").decode()
        assert 'name="csrf"' not in c.get("http://pkgcache/").text  # no token on the open page
        admin_page = c.get("http://pkgcache/admin", headers={"Authorization": f"Basic {good}"}).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', admin_page).group(1)
        assert c.post("http://pkgcache/admin/reset-stats", data={"csrf": csrf}).status_code == 401
        bad = base64.b64encode(b"admin:wrong").decode()
        r = c.post("http://pkgcache/admin/reset-stats", data={"csrf": csrf}, headers={"Authorization": f"Basic {bad}"})
        assert r.status_code == 403 and "wrong user or password" in r.text
        r = c.post("http://pkgcache/admin/reset-stats", data={"csrf": "forged"},
                   headers={"Authorization": f"Basic {good}"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post("http://pkgcache/admin/reset-stats", data={"csrf": csrf}, headers={"Authorization": f"Basic {good}"})
        assert r.status_code == 200
        assert c.get("http://pkgcache/admin/reset-stats").status_code == 405
    wait_for(lambda: "refused admin action" in proxy.log_text() and "wrong user or password" in proxy.log_text(),
             what="the refused admin actions logged")
    proxy.stop()
    # client allow-list
    proxy = start_proxy("--set", "pkgcache_allow_clients=192.0.2.0/24", cache_dir=tmp_path / "c3")
    with proxy.client() as c:
        r = c.get(origin.base + DEB)
    assert r.status_code == 403 and "client address not allowed" in r.text


def test_proxy_authentication_is_mitmproxys_own(origin: Origin, start_proxy) -> None:
    origin.put(DEB, b"x")
    proxy = start_proxy("--set", "proxyauth=user:pw")
    with proxy.client() as c:
        assert c.get(origin.base + DEB).status_code == 407
    import httpx

    with httpx.Client(proxy=f"http://user:pw@127.0.0.1:{proxy.port}", trust_env=False) as c:
        assert c.get(origin.base + DEB).status_code == 200


@pytest.mark.usefixtures("apt_tools")
def test_mirror_style_urls_with_real_apt(origin: Origin, start_proxy, tmp_path: Path) -> None:
    from support.debrepo import AptClient, build_deb, write_indexes

    repo = origin.root / "debian"
    deb = build_deb(repo, "alpha", "1.0")
    write_indexes(repo)
    conf = _conf(tmp_path, f"Remap-debrep: /debian {origin.base}/debian ; {origin.base}/debian\n")
    pport, mport = _free_port(), _free_port()
    proxy = start_proxy("--set", f"pkgcache_conf={conf}", "--mode", f"regular@127.0.0.1:{pport}",
                        "--mode", f"reverse:http://127.0.0.1:9@127.0.0.1:{mport}")
    wait_for(lambda: len(proxy.ports) == 2, what="both listeners")
    mirror_port = mport
    # by repository name, by hostname, and a proxy-style client: one cache
    apt1 = AptClient(tmp_path / "apt1", f"http://127.0.0.1:{mirror_port}/debrep")
    apt1.run("update")
    apt1.run("install", "--download-only", "alpha")
    apt2 = AptClient(tmp_path / "apt2", f"http://127.0.0.1:{mirror_port}/127.0.0.1:{origin.port}/debian")
    apt2.run("update")
    apt2.run("install", "--download-only", "alpha")
    apt3 = AptClient(tmp_path / "apt3", f"{origin.base}/debian", proxy=f"http://127.0.0.1:{pport}")
    apt3.run("update")
    apt3.run("install", "--download-only", "alpha")
    for a in (apt1, apt2, apt3):
        assert [p.read_bytes() for p in a.archives()] == [deb.read_bytes()]
    assert origin.count(f"/debian/{deb.relative_to(repo)}") == 1


def test_mirror_style_urls_on_default_options_reach_the_repositorys_target(origin: Origin, start_proxy,
                                                                            tmp_path: Path) -> None:
    """The documented two listeners (docs/repositories.md) and the example's Remap line, on the product's default access rules: the
    reverse target is a placeholder never contacted, and the repository's target is the admin's word; a
    mirror-style URL naming a host of no repository is still the client's, under the usual rules."""
    origin.put(DEB, b"through the mirror-style listener")
    line = next(ln for ln in (Path(__file__).parents[2] / "conf/acng.conf.example").read_text().splitlines()
                if ln.startswith("Remap-debrep:"))
    conf = _conf(tmp_path, line.replace("http://mirror.example", origin.base)
                 .replace("http://backup-mirror.example", "http://192.0.2.1") + "\n")
    pport, mport = _free_port(), _free_port()
    from support.recipes import block

    start = block("../docs/repositories.md", 1).split()  # the documented command, its ports and file moved
    assert start[:2] == [".venv/bin/pkgcache", "serve"], start
    args = [a.replace("pkgcache_conf=conf/acng.conf.example", f"pkgcache_conf={conf}")
            .replace("regular@8080", f"regular@127.0.0.1:{pport}").replace("@3142", f"@127.0.0.1:{mport}")
            for a in start[2:]]
    proxy = start_proxy(*args, relaxed=False)
    wait_for(lambda: len(proxy.ports) == 2, what="both listeners")
    import httpx

    with httpx.Client(trust_env=False, timeout=30) as c:
        r = c.get(f"http://127.0.0.1:{mport}{DEB}")
        assert r.status_code == 200 and r.content == b"through the mirror-style listener", r.text
        assert c.get(f"http://127.0.0.1:{mport}{DEB}").headers["x-cache"] == "HIT"
        r = c.get(f"http://127.0.0.1:{mport}/127.0.0.1:22{DEB}")  # no repository's: the client's own
        assert r.status_code == 403 and "port 22 is not allowed" in r.text, r.text
        r = c.get(f"http://127.0.0.1:{mport}/127.0.0.1{DEB}")
        assert r.status_code == 403 and "loopback" in r.text, r.text
    assert "port 9" not in proxy.log_text()
    assert f"ready: mirror-style URLs http://127.0.0.1:{mport}/REPOSITORY-NAME/" in proxy.log_text()
    assert f"ready: clients use http://127.0.0.1:{pport} as their proxy" in proxy.log_text()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_per_repository_upstream_proxy(origin: Origin, start_proxy, tmp_path: Path) -> None:
    """proxy= on a Remap line: that repository's downloads go through another proxy (here a plain mitmdump)."""
    from support.proxy import mitmdump

    origin.put(DEB, b"via the upstream proxy")
    up_port = _free_port()
    upstream = subprocess.Popen([mitmdump(), "--listen-host", "127.0.0.1", "--listen-port", str(up_port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import socket
        import time

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", up_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        release = origin.put("/debian/dists/stable/Release", b"Origin: Example\nSuite: stable\n")
        detach_sign(release, ".gpg")
        keyring = export_signing_key(tmp_path / "archive.gpg")
        conf = _conf(tmp_path, f"Remap-debrep: {origin.base}/debian ; ; proxy=http://127.0.0.1:{up_port} "
                               f"keyring={keyring}\n")
        proxy = start_proxy("--set", f"pkgcache_conf={conf}")
        with proxy.client() as c:
            assert c.get(origin.base + DEB).content == b"via the upstream proxy"
            r = c.get(origin.base + DEB)  # a hit: served from our disk, not through the upstream proxy
            assert r.headers["x-cache"] == "HIT"
            r = c.get(origin.base + "/debian/dists/stable/Release")  # checked with the Release.gpg beside it
            assert r.status_code == 200 and r.headers["x-cache"] == "MISS"
    finally:
        upstream.terminate()
        out = upstream.communicate(timeout=10)[0]
    assert origin.count(DEB) == 1
    assert f"GET {origin.base}/debian/pool/main/a/alpha" in out  # the upstream proxy carried the download
    assert f"GET {origin.base}/debian/dists/stable/Release.gpg" in out  # and the signature fetched with it
