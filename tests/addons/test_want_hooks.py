"""/want with tflow: a statement is answered once it is on the datastore; bad input is refused and records nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from pkgcache_suite.stick.datastore import Datastore
from pkgcache_suite.wanted.wantedlist import WantedList
from pkgcache_suite.proxy import wantpage

BASE = "http://mirror.example/debian/dists/stable/"
TARGETS = (f"URI: {BASE}main/binary-amd64/Packages\nBase-URI: {BASE}\nRepo-URI: http://mirror.example/debian/\n"
           "Release: stable\nComponent: main\nArchitecture: amd64\nIdentifier: Packages\n"
           "CompressionTypes: xz gz uncompressed\n\n")
STATUS = b"Package: oldlib\nStatus: install ok installed\nVersion: 1.0\n"


def posted(data: dict[str, str], files: dict[str, bytes] | None = None, accept: str = "*/*",
           method: str = "POST") -> http.HTTPFlow:
    """A flow carrying exactly the body curl -F (or a browser's form) would send."""
    built = httpx.Request(method, "http://pkgcache/want", data=data,
                          files={k: (k, v) for k, v in (files or {}).items()} or None)
    body = built.read()
    f = tflow.tflow()
    f.request = http.Request.make(method, "http://pkgcache/want", body,
                                  {"content-type": built.headers.get("content-type", ""), "accept": accept})
    return f


@pytest.fixture
def wanted(tmp_path: Path) -> WantedList:
    w = WantedList(tmp_path / "cache" / "wanted.json")
    (tmp_path / "cache").mkdir()
    w.attach(Datastore.open(tmp_path / "stick")[0])
    return w


async def test_a_statement_is_on_the_stick_when_answered(wanted: WantedList, tmp_path: Path) -> None:
    f = posted({"packages": "hello vim"}, {"targets": TARGETS.encode(), "status": STATUS})
    await wantpage.answer(f, wanted, "http://10.0.0.1:3142")
    assert f.response is not None and f.response.status_code == 200, f.response and f.response.text
    assert "safe to remove" in f.response.text
    doc = json.loads((tmp_path / "stick" / "wanted.json").read_text())
    (req,) = doc["requests"]
    assert req["packages"] == ["hello", "vim"] and req["archs"] == ["amd64"]
    assert (tmp_path / "stick" / "status" / req["status"]).read_bytes() == STATUS
    again = posted({"packages": "hello vim"}, {"targets": TARGETS.encode(), "status": STATUS})
    await wantpage.answer(again, wanted, "http://10.0.0.1:3142")
    assert len(json.loads((tmp_path / "stick" / "wanted.json").read_text())["requests"]) == 1  # same statement


async def test_a_browser_form_comes_back_to_the_page(wanted: WantedList) -> None:
    f = posted({"packages": "hello", "arch": "amd64"}, {"targets": TARGETS.encode()}, accept="text/html")
    await wantpage.answer(f, wanted, "http://10.0.0.1:3142")
    assert f.response is not None and f.response.status_code == 303
    page = tflow.tflow()
    page.request = http.Request.make("GET", f"http://pkgcache{f.response.headers['location']}")
    await wantpage.answer(page, wanted, "http://10.0.0.1:3142")
    assert page.response is not None and "Recorded request" in page.response.text
    assert "apt-get indextargets --no-release-info | curl -sS -x http://10.0.0.1:3142" in page.response.text


@pytest.mark.parametrize("data,files,code,why", [
    ({"packages": "../../etc/passwd"}, {"targets": TARGETS.encode()}, 400, "not a Debian package name"),
    ({"packages": "hello"}, {"targets": TARGETS.replace("http://mirror", "file://mirror").encode()}, 400,
     "only http and https"),
    ({"packages": "hello"}, {"targets": TARGETS.encode(), "status": b"<html>hi</html>"}, 400, "not a dpkg status"),
    ({"packages": "hello", "arch": "amd64"}, None, 400, "apt-get update"),
    ({"packages": ""}, None, 400, "at least one"),
])
async def test_bad_statements_are_refused_and_record_nothing(wanted: WantedList, tmp_path: Path, data, files,
                                                            code: int, why: str) -> None:
    f = posted(data, files)
    await wantpage.answer(f, wanted, "http://10.0.0.1:3142")
    assert f.response is not None and f.response.status_code == code and why in f.response.text
    assert wanted.requests == {}


async def test_oversized_broken_and_wrong_method(wanted: WantedList, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wantpage, "MAX_BODY", 1000)
    f = posted({"packages": "hello"}, {"targets": TARGETS.encode() * 10})
    await wantpage.answer(f, wanted, "")
    assert f.response is not None and f.response.status_code == 413
    f = tflow.tflow()
    f.request = http.Request.make("POST", "http://pkgcache/want", b"--x\r\n",
                                  {"content-type": "multipart/form-data; boundary=nope"})
    await wantpage.answer(f, wanted, "")
    assert f.response is not None and f.response.status_code == 400
    f = tflow.tflow()
    f.request = http.Request.make("DELETE", "http://pkgcache/want")
    await wantpage.answer(f, wanted, "")
    assert f.response is not None and f.response.status_code == 405
    page = tflow.tflow()
    page.request = http.Request.make("GET", "http://pkgcache/want?done=<script>")
    await wantpage.answer(page, wanted, "")
    assert page.response is not None and "<script>" not in page.response.text


async def test_a_stick_pulled_out_keeps_the_statement_locally(wanted: WantedList, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "stick")
    f = posted({"packages": "hello"}, {"targets": TARGETS.encode(), "status": STATUS})
    await wantpage.answer(f, wanted, "")
    assert f.response is not None and f.response.status_code == 200
    assert "kept locally" in f.response.text
    local = json.loads((tmp_path / "cache" / "wanted.json").read_text())
    assert [r["packages"] for r in local["requests"]] == [["hello"]]
    wanted.attach(Datastore.open(tmp_path / "stick2")[0])  # the next stick gets it, status included
    wanted.flush()
    (req,) = json.loads((tmp_path / "stick2" / "wanted.json").read_text())["requests"]
    assert (tmp_path / "stick2" / "status" / req["status"]).read_bytes() == STATUS
