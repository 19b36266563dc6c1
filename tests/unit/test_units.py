"""Pure-logic checks: URL mapping, classification rules, HTTP range/conditional rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pkgcache_suite.policy import httpsem
from pkgcache_suite.policy.rules import Classifier, Kind, RulesError
from pkgcache_suite.storage import CacheStore, Entry, StoreError
from pkgcache_suite.policy.cachekey import UnsafeURL, key_for, key_for_url


@pytest.mark.parametrize(
    "url,key",
    [
        ("http://Mirror.Example/debian/pool/a.deb", "mirror.example/debian/pool/a.deb"),
        ("http://mirror.example:8080/x/a.rpm", "mirror.example_8080/x/a.rpm"),
        ("https://mirror.example/x//y/a.rpm", "mirror.example/x/y/a.rpm"),
        ("http://mirror.example/simple/pip/", "mirror.example/simple/pip/_index_"),
        ("http://mirror.example/a%20b.deb", "mirror.example/a b.deb"),
    ],
)
def test_keys_are_browsable_paths(url: str, key: str) -> None:
    assert key_for_url(url) == key


def test_query_strings_get_distinct_keys() -> None:
    a = key_for_url("http://m.example/a.rpm?x=1")
    b = key_for_url("http://m.example/a.rpm?x=2")
    assert a != b and a.startswith("m.example/a.rpm@q")


@pytest.mark.parametrize(
    "path",
    ["/../etc/passwd", "/a/%2e%2e/b", "/a/..%2fb", "/a/%2E%2E%2F%2E%2E/x", "/a/./b", "/a\\..\\b", "/a/%00",
     "/.pkgcache/index/cache.db", "relative/path"],
)
def test_traversal_is_refused(path: str) -> None:
    with pytest.raises(UnsafeURL):
        key_for("http", "mirror.example", 80, path)


@pytest.mark.parametrize("host", ["..", "a/b", "", "evil..example", "x" * 300, "a b"])
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(UnsafeURL):
        key_for("http", host, 80, "/a.deb")


def test_long_segments_are_shortened_not_refused() -> None:
    key = key_for("http", "m.example", 80, "/" + "a" * 500 + ".deb")
    assert all(len(p) <= 200 for p in key.split("/"))


def test_store_refuses_keys_and_symlinks_escaping_root(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "c" / "host.example").symlink_to(outside)
    with pytest.raises(StoreError):
        store.body_path("host.example/a.deb")
    for key in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(StoreError):
            store.body_path(key)
    store.close()


def test_store_refuses_unusable_root(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(StoreError):
        CacheStore(f)


@pytest.mark.parametrize(
    "path,kind",
    [
        ("/debian/pool/main/h/hello/hello_2.10_amd64.deb", Kind.IMMUTABLE),
        ("/debian/dists/bookworm/InRelease", Kind.VOLATILE),
        ("/debian/dists/bookworm/main/binary-amd64/Packages.xz", Kind.VOLATILE),
        ("/debian/dists/bookworm/main/source/Sources.gz", Kind.VOLATILE),
        ("/debian/dists/bookworm/main/i18n/Translation-en.bz2", Kind.VOLATILE),
        ("/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/" + "ab" * 32, Kind.IMMUTABLE),
        ("/fedora/updates/40/x86_64/repodata/repomd.xml", Kind.VOLATILE),
        ("/fedora/updates/40/x86_64/repodata/" + "c" * 64 + "-primary.xml.zst", Kind.IMMUTABLE),
        ("/fedora/updates/40/x86_64/Packages/b/bash-5.2-1.fc40.x86_64.rpm", Kind.IMMUTABLE),
        ("/opensuse/tumbleweed/repo/oss/repodata/repomd.xml", Kind.VOLATILE),
        ("/archlinux/core/os/x86_64/core.db", Kind.VOLATILE),
        ("/archlinux/core/os/x86_64/core.db.sig", Kind.VOLATILE),
        ("/archlinux/core/os/x86_64/bash-5.2-1-x86_64.pkg.tar.zst", Kind.IMMUTABLE),
        ("/archlinux/core/os/x86_64/bash-5.2-1-x86_64.pkg.tar.zst.sig", Kind.IMMUTABLE),
        ("/alpine/v3.20/main/x86_64/APKINDEX.tar.gz", Kind.VOLATILE),
        ("/alpine/v3.20/main/x86_64/busybox-1.36.1-r29.apk", Kind.IMMUTABLE),
        ("/simple/requests/", Kind.VOLATILE),
        ("/packages/ab/cd/requests-2.32.3-py3-none-any.whl", Kind.IMMUTABLE),
        ("/packages/ab/cd/requests-2.32.3-py3-none-any.whl.metadata", Kind.IMMUTABLE),
        ("/lodash/-/lodash-4.17.21.tgz", Kind.IMMUTABLE),
        ("/index.html", Kind.PASS),
        ("/debian/README", Kind.PASS),
    ],
)
def test_shipped_rules_classify_each_family(path: str, kind: Kind) -> None:
    assert Classifier().classify("http://mirror.example" + path, path) is kind


def test_filter_file_wins_and_reports_bad_lines(tmp_path: Path) -> None:
    f = tmp_path / "filter"
    f.write_text("^http://private\\.example/\nvolatile /rolling/.*\\.deb$\n")
    c = Classifier(filter_file=f)
    assert c.classify("http://private.example/pool/a.deb", "/pool/a.deb") is Kind.PASS
    assert c.classify("http://m.example/rolling/a.deb", "/rolling/a.deb") is Kind.VOLATILE
    f.write_text("ok\nimmutable\n")
    with pytest.raises(RulesError, match=":2"):
        Classifier(filter_file=f)


def _entry(**kw) -> Entry:
    d = dict(key="k", url="u", kind="immutable", length=100, sha256="", fetched=0.0,
             etag='"abc"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    d.update(kw)
    return Entry(**d)


def test_range_parsing() -> None:
    p = httpsem.parse_range
    assert p("bytes=0-9", 100) == httpsem.ByteRange(0, 9)
    assert p("bytes=90-", 100) == httpsem.ByteRange(90, 99)
    assert p("bytes=-10", 100) == httpsem.ByteRange(90, 99)
    assert p("bytes=-1000", 100) == httpsem.ByteRange(0, 99)
    assert p("bytes=50-5000", 100) == httpsem.ByteRange(50, 99)
    for ignored in (None, "", "bytes=", "bytes=a-b", "pages=1-2", "bytes=5-1", "bytes=1-2,3-4", "bytes=-"):
        assert p(ignored, 100) is None
    for bad in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(httpsem.Unsatisfiable):
            p(bad, 100)


def test_conditionals() -> None:
    e = _entry()
    assert httpsem.not_modified(e, '"abc"', None)
    assert httpsem.not_modified(e, 'W/"abc", "x"', None)
    assert not httpsem.not_modified(e, '"x"', "Mon, 01 Jan 2024 00:00:00 GMT")  # INM decides
    assert httpsem.not_modified(e, None, "Mon, 01 Jan 2024 00:00:00 GMT")
    assert httpsem.not_modified(e, None, "Tue, 02 Jan 2024 00:00:00 GMT")
    assert not httpsem.not_modified(e, None, "Sun, 31 Dec 2023 00:00:00 GMT")
    assert not httpsem.not_modified(e, None, "garbage date")
    assert httpsem.if_range_ok(e, None) and httpsem.if_range_ok(e, '"abc"')
    assert not httpsem.if_range_ok(e, '"old"') and not httpsem.if_range_ok(e, 'W/"abc"')
