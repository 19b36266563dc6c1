"""What a PyPI simple page and an npm document vouch for, and which index keys list package files."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from pkgcache_suite.indexes import npm, pypi
from pkgcache_suite.maintenance.listings import index_root, is_package_index, vouches_for

SHA = "ab" * 32


def test_simple_page_html_and_json() -> None:
    html = (f'<a href="../../files/demo-1.0.whl#sha256={SHA}" data-yanked="">demo</a>'
            '<a href="https://files.example/demo-0.9.tar.gz#md5=00">old</a><a>no href</a>').encode()
    got = list(pypi.files(html, "http://pypi.example/simple/demo/"))
    assert got == [pypi.File("http://pypi.example/files/demo-1.0.whl", SHA, True),
                   pypi.File("https://files.example/demo-0.9.tar.gz", None, False)]
    doc = {"files": [{"url": "/f/demo-1.0.whl", "hashes": {"sha256": SHA.upper()}, "yanked": "broken"},
                     {"url": 5}, {"url": "/f/x.whl", "hashes": "no"}]}
    got = list(pypi.files(json.dumps(doc).encode(), "http://pypi.example/simple/demo/"))
    assert got == [pypi.File("http://pypi.example/f/demo-1.0.whl", SHA, True),
                   pypi.File("http://pypi.example/f/x.whl", None, False)]


def test_npm_document_digests() -> None:
    body = b"tarball"
    doc = {"versions": {
        "1.0.0": {"dist": {"tarball": "http://r.example/a/-/a-1.0.0.tgz", "shasum": hashlib.sha1(body).hexdigest(),
                           "integrity": "sha512-" + base64.b64encode(hashlib.sha512(body).digest()).decode()}},
        "0.9.0": {"deprecated": "use 1", "dist": {"tarball": "http://r.example/a/-/a-0.9.0.tgz", "shasum": "AB" * 20}},
        "0.1.0": {"dist": {"tarball": 3}}, "0.0.1": "junk"}}
    got = list(npm.tarballs(json.dumps(doc).encode()))
    assert got == [npm.Tarball("1.0.0", "http://r.example/a/-/a-1.0.0.tgz", "sha512:" + hashlib.sha512(body).hexdigest(),
                               False),
                   npm.Tarball("0.9.0", "http://r.example/a/-/a-0.9.0.tgz", "sha1:" + "ab" * 20, True)]
    with pytest.raises(ValueError):
        list(npm.tarballs(b"not json"))


@pytest.mark.parametrize("key, root", [
    ("pypi.example/simple/demo/_index_", "pypi.example"),
    ("pypi.example/root/pypi/+simple/demo/_index_~pypi-json", None),  # devpi's +simple: not a /simple/ page
    ("mirror.example/pypi/simple/demo/_index_~pypi-json", "mirror.example"),
    ("registry.example/left-pad~npm-abbreviated", "registry.example"),
    ("registry.example/@types%2Fnode~json", "registry.example"),
    ("registry.example/left-pad", None),  # no variant: not a document a client asked for as JSON
    ("mirror.example/archlinux/core/os/x86_64/core.db", "mirror.example/archlinux/core/os/x86_64"),
    ("mirror.example/alpine/v3.20/main/x86_64/APKINDEX.tar.gz", "mirror.example/alpine/v3.20/main/x86_64"),
])
def test_which_keys_are_package_indexes(key: str, root: str | None) -> None:
    assert index_root(key, lambda k: False) == root
    assert is_package_index(key, lambda k: False) == (root is not None)


def test_a_page_vouches_for_files_anywhere_a_repository_only_for_its_own() -> None:
    assert vouches_for("pypi.example/simple/demo/_index_", "pypi.example", "files.example/demo-1.0.whl")
    assert not vouches_for("m.example/debian/dists/x/main/binary-amd64/Packages", "m.example/debian",
                           "other.example/debian/pool/a.deb")


def test_withdrawn_files_are_named_until_listed_again(tmp_path) -> None:
    from pkgcache_suite.storage.withdrawn import Withdrawn

    w = Withdrawn(tmp_path)
    cached = {"h/a-1.whl", "h/a-2.whl"}.__contains__
    assert w.take_in("h/simple/a/_index_", ["h/a-1.whl", "h/a-2.whl"], cached) == []  # the first listing
    assert w.take_in("h/simple/a/_index_", ["h/a-1.whl"], cached) == ["h/a-2.whl"]
    assert set(w.all()) == {"h/a-2.whl"} and w.all()["h/a-2.whl"][0] == "h/simple/a/_index_"
    assert w.take_in("h/simple/a/_index_", ["h/a-1.whl", "h/a-3.whl"], cached) == []  # a-3 not cached: not named
    assert w.take_in("h/simple/a/_index_", ["h/a-1.whl", "h/a-2.whl"], cached) == [] and w.all() == {}
    w.close()
