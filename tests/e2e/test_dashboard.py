"""The dashboard as a person sees it: rendered by headless Chromium at the proxy's own address, with no
proxy configured in the browser; counters and history still there after a restart; admin actions come
back to the page with their result."""

from __future__ import annotations

import base64
import datetime
import html
import re
from pathlib import Path

import httpx

from support.browser import dump_dom
from support.origin import Origin
from support.proxy import wait_for

DEB = "/debian/pool/main/h/hello/hello_1.0_amd64.deb"


def _text(dom: str) -> str:
    """What is readable on the page: tags out, whitespace folded, entities decoded."""
    no_style = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", no_style)).split())


def test_the_dashboard_in_a_browser_and_after_a_restart(origin: Origin, start_proxy, tmp_path: Path) -> None:
    proxy = start_proxy("--set", "pkgcache_admin_password=pw")
    origin.put(DEB, b"p" * 300_000)
    with proxy.client() as c:
        for _ in range(3):  # one miss, two hits
            assert c.get(origin.base + DEB).status_code == 200
    today = datetime.date.today().isoformat()
    shot = tmp_path / "dashboard.png"
    dom = dump_dom(f"{proxy.url}/", screenshot=shot)
    text = _text(dom)
    assert shot.stat().st_size > 10_000
    assert "Hit ratio (requests) 66.7%" in text and "Hit ratio (bytes) 66.7%" in text, proxy.log_text()
    assert "Bytes saved 585.9 KiB" in text
    assert "Upstream Online" in text and "Healthy" in text
    assert "Downloads in progress 0" in text and "Uptime" in text and "pkgcache 0.1.0" in text
    assert origin.base + DEB in text and "hit" in text and "miss, downloaded" in text  # recent activity
    assert "By client network" not in text and "127.0.0.0/24" not in text  # who the clients are: admin only
    assert "Sign in as the admin" in text and 'name="csrf"' not in dom
    assert f"{today} 3 66.7%" in text  # history: the day's requests and hit ratio
    assert not re.search(r"""(src|href)=["']https?://(?!127\.0\.0\.1)""", dom), "no asset from elsewhere"

    setup = _text(dump_dom(f"{proxy.url}/setup"))
    assert f'Acquire::http::Proxy "{proxy.url}";' in setup
    for manager in ("dnf", "zypper", "pacman", "pip", "npm"):
        assert manager in setup

    # the admin's view, signed in: who the clients are, and the actions; one posted from it comes back to it
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode(), "Accept": "text/html"}
    assert httpx.get(f"{proxy.url}/admin", trust_env=False).status_code == 401
    page = httpx.get(f"{proxy.url}/admin", headers=auth, trust_env=False).text
    assert "By client network" in page and "127.0.0.0/24" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = httpx.post(f"{proxy.url}/admin/verify", data={"csrf": csrf}, headers=auth, trust_env=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin?done=")
    after = _text(httpx.get(f"{proxy.url}{r.headers['location']}", headers=auth, trust_env=False).text)
    assert "Healthy verify: 1 checked, 0 damaged" in after  # the banner, at the top
    assert "verify" in after.split("Maintenance", 1)[1]  # the run is listed with the last maintenance results

    # restart on the same cache: the totals and the history are still there
    proxy.stop()
    again = start_proxy("--set", "pkgcache_admin_password=pw", cache_dir=proxy.cache_dir)
    text = _text(dump_dom(f"{again.url}/"))
    assert "Hit ratio (requests) 66.7%" in text and f"{today} 3 66.7%" in text
    with again.client() as c:
        assert c.get(origin.base + DEB).headers["x-cache"] == "HIT"
    wait_for(lambda: f"{today} 4 75.0%" in _text(dump_dom(f"{again.url}/")), timeout=30,
             what="the new hit to join the day's total")


def test_the_report_host_through_the_proxy_and_the_metrics(proxy) -> None:
    with proxy.client() as c:
        page = c.get("http://pkgcache/")
        assert page.status_code == 200 and "Hit ratio (requests)" in page.text
        assert "<link" not in page.text and "<script" not in page.text
        assert c.get("http://pkgcache/setup").status_code == 200
        # a browser not set up for the proxy and one that is see the same page
        direct = httpx.get(f"{proxy.url}/", trust_env=False)
        assert direct.status_code == 200 and "Hit ratio (requests)" in direct.text


def test_import_and_precache_from_the_page_come_back_with_their_result(origin: Origin, start_proxy,
                                                                      tmp_path: Path) -> None:
    proxy = start_proxy("--set", "pkgcache_admin_password=pw")
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode(), "Accept": "text/html"}
    page = httpx.get(f"{proxy.url}/admin", headers=auth, trust_env=False).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    folder = tmp_path / "debs"
    folder.mkdir()
    (folder / "stray_1.0_all.deb").write_bytes(b"not listed by any cached index")
    results = []
    for action, form in (("import", {"dir": str(folder)}), ("import", {"dir": str(tmp_path / "nowhere")}),
                         ("precache", {"suite": "bookworm", "component": "main", "arch": "amd64"})):
        r = httpx.post(f"{proxy.url}/admin/{action}", data={"csrf": csrf, **form}, headers=auth, trust_env=False)
        assert r.status_code == 303
        results.append(_text(httpx.get(f"{proxy.url}{r.headers['location']}", headers=auth, trust_env=False).text))
    assert "import: 0 placed, 0 already cached, 1 unmatched, 0 failed" in results[0]
    assert "is not a folder on the proxy's machine" in results[1]
    assert "precache: no cached index matches suite bookworm component main architecture amd64" in results[2]
    # a script gets the result as text
    r = httpx.post(f"{proxy.url}/admin/import", data={"csrf": csrf, "dir": str(folder)},
                   headers={"Authorization": auth["Authorization"]}, trust_env=False)
    assert r.status_code == 200 and r.text.startswith("import: ")


def test_the_want_page_in_a_browser(start_proxy, tmp_path: Path) -> None:
    """A statement sent from the page's form comes back to the page, which lists it with the lines to run."""
    proxy = start_proxy("--set", "pkgcache_offline=on", "--set", f"pkgcache_datastore={tmp_path / 'stick'}")
    base = "http://mirror.example/debian/dists/stable/"
    targets = (f"URI: {base}main/binary-amd64/Packages\nBase-URI: {base}\nRepo-URI: http://mirror.example/debian/\n"
               "Release: stable\nComponent: main\nArchitecture: amd64\nIdentifier: Packages\n\n")
    r = httpx.post(f"{proxy.url}/want", data={"packages": "hello vim", "recommends": "no"},
                   files={"targets": ("targets", targets.encode())}, headers={"Accept": "text/html"},
                   trust_env=False)
    assert r.status_code == 303
    text = _text(dump_dom(f"{proxy.url}{r.headers['location']}", screenshot=tmp_path / "want.png"))
    assert "Recorded request" in text and "It is on the datastore: safe to remove." in text
    assert "hello vim" in text and "http://mirror.example/debian/ stable main" in text and "not fetched yet" in text
    assert "apt-get indextargets --no-release-info | curl -sS -x" in text and "-F format=rpm" in text
    assert (tmp_path / "want.png").stat().st_size > 0
