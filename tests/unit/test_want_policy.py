"""Stated requests, the indexes fetch picks and the suites seen: pure parts, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from pkgcache_suite.indexes.debian import ReleaseInfo
from pkgcache_suite.resolve import aptresolve, indexplan
from pkgcache_suite.stick.importer import ImportResult, _requests
from pkgcache_suite.wanted.suiteuse import MAX_SUITES, SuiteUse
from pkgcache_suite.wanted.wantspec import (Source, WantError, WantRequest, build_request, check_status,
                                             parse_archs, parse_packages, parse_targets, request_from_json)

BASE = "http://mirror.example/debian/dists/stable/"


def target(uri: str = BASE + "main/binary-amd64/Packages", base: str = BASE, **fields: str) -> str:
    para = {"URI": uri, "Base-URI": base, "Repo-URI": "http://mirror.example/debian/", "Release": "stable",
            "Component": "main", "Architecture": "amd64", "Identifier": "Packages",
            "CompressionTypes": "xz bz2 lzma gz lz4 zst uncompressed", "By-Hash": "yes", **fields}
    return "".join(f"{k}: {v}\n" for k, v in para.items()) + "\n"


@pytest.mark.parametrize("text,expected", [
    ("hello", ("hello",)),
    ("hello vim, hello\nlibc6:i386", ("hello", "vim", "libc6:i386")),
    ("hello=2.10-3 gcc/bookworm-backports libstdc++6", ("hello=2.10-3", "gcc/bookworm-backports", "libstdc++6")),
])
def test_package_names_apt_get_install_takes(text: str, expected: tuple[str, ...]) -> None:
    assert parse_packages(text) == expected


@pytest.mark.parametrize("text,why", [
    ("", "at least one"),
    ("../etc/passwd", "not a Debian package name"),
    ("Hello", "not a Debian package name"),
    ("hello;rm", "not a Debian package name"),
    ("-o=APT::x", "not a Debian package name"),
    (" ".join(f"p{i}" for i in range(501)), "at most 500"),
])
def test_bad_package_names_are_refused(text: str, why: str) -> None:
    with pytest.raises(WantError, match=why):
        parse_packages(text)


def test_architectures() -> None:
    assert parse_archs("amd64, i386 amd64") == ("amd64", "i386")
    for bad in ("all", "AMD64", "x/y"):
        with pytest.raises(WantError, match="not an architecture"):
            parse_archs(bad)


def test_indextargets_give_targets_sources_and_architectures_native_first() -> None:
    text = (target() + target(BASE + "main/binary-all/Packages", Architecture="all")
            + target(BASE + "main/binary-i386/Packages", Architecture="i386")
            + target(BASE + "main/i18n/Translation-en", Identifier="Translations", Language="en")
            + "Junk: no URI here\n\n")
    targets, sources, archs = parse_targets(text)
    assert [t.name for t in targets] == ["main/binary-amd64/Packages", "main/binary-all/Packages",
                                         "main/binary-i386/Packages", "main/i18n/Translation-en"]
    assert targets[0].compressions[:2] == ("xz", "bz2") and targets[0].by_hash
    assert sources == (Source("http://mirror.example/debian/", "stable", ("main",), ("amd64", "all", "i386")),)
    assert archs == ("amd64", "i386")


@pytest.mark.parametrize("para,why", [
    (target("file:/srv/repo/dists/stable/main/binary-amd64/Packages", "file:/srv/repo/dists/stable/"),
     "only http and https"),
    (target("http://u:p@mirror.example/d/dists/s/main/binary-amd64/Packages", "http://u:p@mirror.example/d/dists/s/"),
     "without credentials"),
    (target(BASE + "../../../etc/Packages"), "not an index name"),
    (target("http://other.example/x/Packages"), "not under its Base-URI"),
    (target(Release="stable main] [trusted=yes"), "not a suite name"),
    (target("http://mirror.example/flat/Packages", "http://mirror.example/flat/"), "flat repositories"),
])
def test_hostile_targets_are_refused(para: str, why: str) -> None:
    with pytest.raises(WantError, match=why):
        parse_targets(para)


def test_status_must_look_like_dpkg_status() -> None:
    assert len(check_status(b"Package: a\nStatus: install ok installed\n")) == 64
    for bad, why in ((b"<html>", "no Package"), (b"Package: a\n\x00\x01", "binary")):
        with pytest.raises(WantError, match=why):
            check_status(bad)


def test_build_request_falls_back_to_the_suites_seen() -> None:
    seen = (Source("http://mirror.example/debian/", "stable", ("main",), ("arm64", "all")),)
    req = build_request({"packages": "hello"}, None, "10.0.0.5", seen=seen)
    assert req.sources == seen and req.archs == ("arm64",)
    with pytest.raises(WantError, match="apt-get update"):
        build_request({"packages": "hello", "arch": "amd64"}, None, "10.0.0.5")
    with pytest.raises(WantError, match="arch"):
        build_request({"packages": "hello"}, None, "10.0.0.5")
    assert build_request({"packages": "hello", "recommends": "no"}, None, "", seen=seen).recommends is False


def test_a_recorded_request_reads_back_and_a_tampered_one_is_refused() -> None:
    targets, sources, archs = parse_targets(target())
    req = WantRequest(("hello",), archs, sources, targets, "a" * 64, True, "10.0.0.5", 1.0)
    back = request_from_json(req.to_json())
    assert back.id == req.id and back.targets == req.targets and back.sources == req.sources
    for change in ({"packages": ["x;y"]}, {"status": "../x"}, {"sources": [{"repo": "file:/", "suite": "s",
                                                                              "components": [], "archs": []}]},
                   {"sources": [{"repo": "http://h/", "suite": "s", "components": ["main contrib"],
                                 "archs": []}]}):
        with pytest.raises(WantError):
            request_from_json({**req.to_json(), **change})


def release(by_hash: bool = True) -> ReleaseInfo:
    names = ["main/binary-amd64/Packages", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages.xz",
             "main/binary-arm64/Packages.xz", "main/binary-all/Packages.xz", "contrib/binary-amd64/Packages.xz",
             "main/i18n/Translation-en.bz2", "main/i18n/Translation-de.bz2", "contrib/i18n/Translation-en.bz2"]
    return ReleaseInfo(BASE + "InRelease", BASE, ["main", "contrib"], ["amd64", "arm64", "all"], by_hash,
                       {n: (10, f"{i:064x}") for i, n in enumerate(names)})


def stems(urls: list[str], info: ReleaseInfo) -> set[str]:
    by_sha = {sha: name for name, (_, sha) in info.entries.items()}
    return {by_sha[u.rsplit("/", 1)[1]] if "/by-hash/" in u else u[len(BASE):] for u in urls}


@pytest.mark.parametrize("targets,usage,everything,expected,why", [
    ("stated", None, False, {"main/binary-amd64/Packages.gz", "main/i18n/Translation-en.bz2"}, "stated"),
    ("", indexplan.Usage(frozenset({"main"}), frozenset({"amd64", "all"}), False), False,
     {"main/binary-amd64/Packages.xz", "main/binary-all/Packages.xz"}, "as the clients used them"),
    ("", None, False, {"main/binary-amd64/Packages.xz", "main/binary-all/Packages.xz",
                       "contrib/binary-amd64/Packages.xz", "main/i18n/Translation-en.bz2",
                       "contrib/i18n/Translation-en.bz2"}, "no client's use"),
    ("stated", None, True, {"main/binary-amd64/Packages.xz", "main/binary-all/Packages.xz",
                            "contrib/binary-amd64/Packages.xz", "main/i18n/Translation-en.bz2",
                            "main/i18n/Translation-de.bz2", "contrib/i18n/Translation-en.bz2"}, "--all-indexes"),
])
def test_fetch_brings_the_indexes_clients_use(targets: str, usage: indexplan.Usage | None, everything: bool,
                                              expected: set[str], why: str) -> None:
    info = release()
    stated = []
    if targets:
        # the client's apt prefers gz here (its CompressionTypes), and asks for English translations
        stated = list(parse_targets(target(CompressionTypes="gz xz")
                                    + target(BASE + "main/i18n/Translation-en", Identifier="Translations"))[0])
    urls, words = indexplan.select(info, stated, usage, ["amd64"], everything)
    assert stems(urls, info) == expected and why in words
    assert all("/by-hash/SHA256/" in u for u in urls)
    plain, _ = indexplan.select(release(by_hash=False), stated, usage, ["amd64"], everything)
    assert all("/by-hash/" not in u for u in plain)


@pytest.mark.parametrize("name,stem", [
    ("main/binary-amd64/Packages.xz", "main/binary-amd64/Packages"),
    ("main/binary-amd64/Packages", "main/binary-amd64/Packages"),
    ("main/i18n/Translation-en.bz2", "main/i18n/Translation-en"),
    ("main/i18n/Translation-pt_BR.zst", "main/i18n/Translation-pt_BR"),
    ("main/Contents-amd64.gz", "main/Contents-amd64"),
    ("main/dep11/icons-48x48.tar.gz", "main/dep11/icons-48x48.tar"),
    ("main/binary-amd64/Release", "main/binary-amd64/Release"),
])
def test_an_index_name_without_its_compression(name: str, stem: str) -> None:
    assert indexplan.stem(name) == stem


def test_a_stated_target_is_read_in_one_compression_and_name() -> None:
    stated = parse_targets(target(CompressionTypes="gz xz"))[0][0]
    info = release()
    assert indexplan.chosen(info, stated) == BASE + "main/binary-amd64/by-hash/SHA256/" + f"{1:064x}"
    assert indexplan.chosen(release(by_hash=False), stated) == BASE + "main/binary-amd64/Packages.gz"


@pytest.mark.parametrize("url,seen", [
    (BASE + "main/binary-amd64/by-hash/SHA256/abc", (BASE, "main", "amd64", False)),
    (BASE + "contrib/i18n/by-hash/SHA256/abc", (BASE, "contrib", None, True)),
    (BASE + "main/binary-i386/Packages.xz", (BASE, "main", "i386", False)),
    (BASE + "InRelease", None),
    ("http://mirror.example/debian/pool/main/h/hello/hello_1_all.deb", None),
])
def test_index_requests_show_component_and_architecture(url: str, seen: tuple | None) -> None:
    assert indexplan.seen_index(url) == seen


def test_suites_seen_are_remembered_per_client_and_bounded() -> None:
    use = SuiteUse()
    assert use.note(BASE + "InRelease", "10.0.0.5")
    assert use.note(BASE + "main/binary-amd64/by-hash/SHA256/abc", "10.0.0.5")
    assert not use.note(BASE + "main/binary-amd64/Packages.xz", "10.0.0.5")  # nothing new
    use.note("http://other.example/d/dists/x/InRelease", "10.0.0.6")
    assert use.sources_for("10.0.0.5") == (Source("http://mirror.example/debian/", "stable", ("main",),
                                                  ("amd64",)),)
    assert len(use.sources_for("10.9.9.9")) == 2  # a client never seen: every suite seen
    again = SuiteUse(use.as_json())
    assert again.as_json() == use.as_json()
    for i in range(MAX_SUITES + 50):
        use.note(f"http://mirror.example/d/dists/s{i}/InRelease", "10.0.0.7")
    assert len(use.suites) == MAX_SUITES
    SuiteUse({"x": "not a dict", BASE: {"components": "main"}})  # junk from disk is ignored


def test_apt_file_uris_map_back_to_the_clients_urls(tmp_path: Path) -> None:
    suite = aptresolve.Suite("http://mirror.example/debian/", "stable", ("main",), tmp_path / "r", "InRelease", {})
    (tmp_path / "r").write_text("")
    req = WantRequest(("hello",), ("amd64",))
    root = aptresolve.PrivateRoot(tmp_path / "root", req, [suite], None)
    assert root.to_url(f"file:{tmp_path}/root/repo/0/pool/main/libs/libstdc%2b%2b6_1_amd64.deb") == (
        "http://mirror.example/debian/pool/main/libs/libstdc++6_1_amd64.deb")
    assert root.to_url("file:/elsewhere/pool/x.deb") is None
    conf = (tmp_path / "root" / "apt.conf").read_text()
    assert 'APT::Architecture "amd64";' in conf and 'Dir::Etc::parts "apt.conf.d";' in conf


def test_import_settles_resolved_requests_and_keeps_the_others_reasons() -> None:
    res = ImportResult()
    _requests({"requests": {"a": {"problems": {}}, "b": {"problems": {"x": "E: Unable to locate package x"}},
                            "c": "junk"}}, res)
    assert res.fulfilled == ["a"] and res.unresolved == {"b": {"x": "E: Unable to locate package x"}}


def test_rpm_statements() -> None:
    from pkgcache_suite.wanted.wantspec import build_rpm_request

    db = b"SQLite format 3\x00" + b"\x00" * 100
    req = build_rpm_request({"packages": "hello python3-libs.x86_64 gcc-c++", "arch": "x86_64",
                             "repos": "http://mirror.example/fedora/os/ http://mirror.example/updates"}, db, "10.0.0.5")
    assert req.format == "rpm" and req.packages == ("hello", "python3-libs.x86_64", "gcc-c++")
    assert req.repos == ("http://mirror.example/fedora/os/", "http://mirror.example/updates/")
    assert request_from_json(req.to_json()).id == req.id
    seen = build_rpm_request({"packages": "hello", "arch": "aarch64"}, None, "", seen=("http://m.example/r/",))
    assert seen.repos == ("http://m.example/r/",) and seen.status_sha256 is None
    for fields, blob, why in (({"packages": "hello"}, None, "uname -m"),
                              ({"packages": "hello", "arch": "x86_64"}, None, "makecache"),
                              ({"packages": "a;b", "arch": "x86_64"}, None, "not an RPM package name"),
                              ({"packages": "hello", "arch": "x86_64", "repos": "ftp://m.example/"}, None, "http"),
                              ({"packages": "hello", "arch": "x86_64", "repos": "http://m.example/"}, b"<html>",
                               "not an rpmdb.sqlite")):
        with pytest.raises(WantError, match=why):
            build_rpm_request(fields, blob, "")


def test_repomd_names_the_metadata_clients_read(tmp_path: Path) -> None:
    from pkgcache_suite.resolve import rpmmeta

    (tmp_path / "repomd.xml").write_text(
        '<repomd xmlns="http://linux.duke.edu/metadata/repo">'
        + "".join(f'<data type="{t}"><checksum type="sha256">{i:064x}</checksum><location href="repodata/{t}.xml.gz"/>'
                  f'<size>{10 + i}</size></data>' for i, t in enumerate(
                      ("primary", "filelists", "other", "primary_db", "updateinfo", "primary_zck")))
        + "</repomd>")
    known: dict[str, tuple[int, str]] = {}
    repos = rpmmeta.RpmRepos(known)
    base = "http://mirror.example/fedora/os/"
    more = repos.add_repomd(base + rpmmeta.REPOMD, tmp_path / "repomd.xml")
    assert [u[len(base):] for u in more] == ["repodata/primary.xml.gz", "repodata/filelists.xml.gz",
                                             "repodata/updateinfo.xml.gz"]
    assert known[base + "repodata/other.xml.gz"] == (12, f"{2:064x}")  # vouched for, though not fetched
    assert repos.is_primary(base + "repodata/primary.xml.gz") and not repos.is_primary(base + "repodata/x")
    assert base + "content" in repos.probes(base + rpmmeta.REPOMD)


def test_absent_probes_are_settled_but_missing_packages_fail() -> None:
    from pkgcache_suite.stick.fetch import Outcome
    from pkgcache_suite.stick.fetchreport import absent

    out = Outcome()
    m = "http://mirror.example/r/"
    out.failed = {m + "content": "HTTP 404 Not Found", m + "media.1/media": "HTTP 404 Not Found",
                  m + "p/hello-1.rpm": "HTTP 404 Not Found", m + "repodata/repomd.xml.key": "HTTP 503",
                  m + "repodata/primary.xml.gz": "HTTP 404 Not Found"}
    out.expanded = [m + "repodata/primary.xml.gz", m + "media.1/media"]
    failed = {u: {"permanent": not why.startswith("HTTP 503")} for u, why in out.failed.items()}
    gone = absent(out, {m + "content", m + "p/hello-1.rpm"}, {m + "media.1/media", m + "repodata/repomd.xml.key"},
                  failed)
    assert set(gone) == {m + "content", m + "media.1/media"}


def test_rpm_repositories_seen_per_client() -> None:
    use = SuiteUse()
    assert use.note("http://mirror.example/fedora/os/repodata/repomd.xml", "10.0.0.5")
    assert not use.note("http://mirror.example/fedora/os/repodata/repomd.xml", "10.0.0.5")
    use.note("http://mirror.example/other/repodata/repomd.xml", "10.0.0.6")
    assert use.rpm_repos_for("10.0.0.5") == ("http://mirror.example/fedora/os/",)
    assert SuiteUse(None, use.rpm_json()).rpm_json() == use.rpm_json()


@pytest.mark.parametrize("name,ok", [("repodata/primary.xml.gz", True), ("main/binary-amd64/Packages.xz", True),
                                     ("../../etc/passwd", False), ("/etc/passwd", False), ("a//b", False),
                                     ("a/./b", False), ("", False)])
def test_names_from_indexes_stay_below_their_folder(name: str, ok: bool) -> None:
    from pkgcache_suite.resolve.resolution import plain_relative

    assert plain_relative(name) is ok


def test_rpm_resolution_says_why_it_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No dnf here, no repository fetched, or metadata dnf cannot read: each is a reason, never a crash."""
    from pkgcache_suite.resolve import rpmresolve

    req = WantRequest(("hello",), ("x86_64",), format="rpm", repos=("http://mirror.example/r/",))
    assert "none of the client's repositories" in rpmresolve.resolve(req, [], None).problems["*"]
    (tmp_path / "repomd.xml").write_text("not xml")
    broken = rpmresolve.resolve(req, [("http://mirror.example/r/", {"repodata/repomd.xml": tmp_path / "repomd.xml"})],
                                None)
    assert broken.urls == [] and "dnf" in broken.problems["*"]
    monkeypatch.setattr(rpmresolve, "dnf_python", lambda: None)
    assert "not installed here" in rpmresolve.resolve(req, [], None).problems["*"]
