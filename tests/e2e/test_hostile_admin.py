"""The admin surface against a hostile page and a hostile client, on both setups.

A page on another site that the admin opens cannot act (its requests carry another Origin and
Sec-Fetch-Site, and it cannot learn the form token, which only the admin's credentials show); an ordinary
client learns no token and nothing about who the other clients are; and in the tier, the token the
dashboard shows is the one every worker accepts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pkgcache_suite.policy.cachekey import key_for_url
from support.origin import Origin
from support.proxy import Proxy, wait_for
from support.tier import TierProcess

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
SAME = {"Origin": "http://pkgcache", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture(params=["embedded", "tier"])
def site(request: pytest.FixtureRequest, origin: Origin, tmp_path: Path) -> Iterator[tuple[Proxy | TierProcess, str]]:
    opts = ("--set", "pkgcache_admin_password=pw")
    proxy = Proxy(tmp_path / "cache", *opts) if request.param == "embedded" else TierProcess(tmp_path / "cache", 2,
                                                                                                *opts)
    origin.put(DEB, b"a package\n" * 100)
    url = origin.base + DEB
    with proxy.client() as c:
        assert c.get(url).status_code == 200
    yield proxy, url
    proxy.stop()
    assert "Traceback" not in proxy.log_text(), proxy.log_text()


def _token(c: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get("http://pkgcache/admin", headers=AUTH).text).group(1)


def test_no_token_for_anyone_but_the_admin(site) -> None:
    proxy, _url = site
    with proxy.client() as c:
        r = c.get("http://pkgcache/csrf")
        assert r.status_code == 401 and len(r.text) < 60 and "credentials" in r.text
        assert 'name="csrf"' not in c.get("http://pkgcache/").text
        assert c.get("http://pkgcache/admin").status_code == 401
        token = c.get("http://pkgcache/csrf", headers=AUTH).text
        assert token == _token(c)  # a script's token and the page's are one


@pytest.mark.parametrize("headers", [
    {"Origin": "http://attacker.invalid"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://pkgcache"},
    {"Origin": "null"},
], ids=["other-origin", "cross-site", "same-site", "null-origin"])
def test_a_cross_site_post_with_the_admins_credentials_and_token_does_nothing(site, headers: dict) -> None:
    proxy, url = site
    key = key_for_url(url)
    with proxy.client() as c:
        token = _token(c)
        r = c.post("http://pkgcache/admin/delete", data={"csrf": token, "key": key}, headers={**AUTH, **headers})
        assert r.status_code == 403 and "another" in r.text, r.text
        assert c.get(url).headers["x-cache"] == "HIT"  # still cached
        r = c.post("http://pkgcache/admin/delete", data={"csrf": token, "key": key}, headers={**AUTH, **SAME})
        assert r.status_code == 200, r.text  # from the page itself it works
        assert c.get(url).headers["x-cache"] == "MISS"


def test_who_the_clients_are_is_for_the_admin_only(site) -> None:
    proxy, _url = site
    with proxy.client() as c:
        wait_for(lambda: "127.0.0.0/24" in c.get("http://pkgcache/stats.json", headers=AUTH).json()["by_client"],
                 what="the client's network in the admin's figures")
        assert "127.0.0.0/24" in c.get("http://pkgcache/admin", headers=AUTH).text
        anyone = c.get("http://pkgcache/stats.json").json()
        metrics = c.get("http://pkgcache/metrics").text
        page = c.get("http://pkgcache/").text
    assert "by_client" not in anyone and all(r["client"] == "" for r in anyone["recent"])
    for text in (metrics, page, str(anyone)):
        assert "127.0.0.0/24" not in text
    assert "Client network" not in page


def test_every_worker_accepts_the_token_the_dashboard_shows(site) -> None:
    proxy, _url = site
    with proxy.client() as c:
        token = _token(c)
        for _ in range(6):  # requests land on either worker
            r = c.post("http://pkgcache/admin/reset-stats", data={"csrf": token}, headers={**AUTH, **SAME})
            assert r.status_code == 200, r.text
