"""What the report says, in words and human units (pure)."""

from __future__ import annotations

import pytest

from pkgcache_suite.proxy.reportview import dashboard, ratios, setup, upstream_words


@pytest.mark.parametrize("counts,req,byte", [
    ({}, "–", "–"),
    ({"hit": 3, "miss": 1, "bytes_from_cache": 300, "bytes_from_upstream": 100}, "75.0%", "75.0%"),
    ({"hit": 1, "coalesced": 1, "revalidated": 1, "stale": 1, "miss": 2, "failed": 1, "offline_miss": 1,
      "pass": 50}, "50.0%", "–"),  # passed-through requests are not cacheable: not in the ratio
])
def test_ratios(counts: dict[str, int], req: str, byte: str) -> None:
    r = ratios(counts)
    assert (r["req_ratio"], r["byte_ratio"]) == (req, byte)


@pytest.mark.parametrize("mode,hosts,word", [
    ("auto", {}, "Online"),
    ("auto", {"mirror.example:80": "up"}, "Online"),
    ("auto", {"mirror.example:80": "down"}, "Unreachable"),
    ("auto", {"mirror.example:80": "down", "other.example:80": "up"}, "Partly unreachable"),
    ("on", {"mirror.example:80": "up"}, "Offline"),
])
def test_upstream_in_words(mode: str, hosts: dict[str, str], word: str) -> None:
    assert upstream_words(mode, hosts)["word"] == word


def test_dashboard_view_uses_human_units() -> None:
    snap = {"total": {"hit": 9, "miss": 1, "bytes_from_cache": 3 << 20, "bytes_from_upstream": 1 << 20},
            "daily": {"2026-11-25": {"hit": 9, "miss": 1}}, "uptime": 3725.0, "by_repo": {}, "by_client": {},
            "recent": [{"when": 0, "event": "coalesced", "url": "http://m/a.deb", "client": "10.0.0.0/24",
                        "bytes": 2048}]}
    view = dashboard(snap, {"cache_dir": "/var/cache/pkgcache", "downloads_in_progress": 2},
                     {"size": {"files": 3, "bytes": 5 << 30}}, (100 << 30, 40 << 30))
    assert view["t"]["req_ratio"] == "90.0%" and view["t"]["from_cache"] == "3.0 MiB"
    assert view["cache"]["size"] == "5.0 GiB" and view["cache"]["free"] == "40.0 GiB"
    assert view["uptime"] == "1 h 2 min" and view["history"][0]["width"] == 90
    assert view["recent"][0]["event"] == "hit, shared download" and view["recent"][0]["size"] == "2.0 KiB"


def test_setup_lines_carry_the_proxy_address() -> None:
    clients = setup("http://192.0.2.10:8080")["clients"]
    names = " ".join(c["name"] for c in clients)
    for manager in ("apt", "dnf", "zypper", "pacman", "pip", "npm"):
        assert manager in names
    assert all("http://192.0.2.10:8080" in c["lines"] for c in clients)


def test_the_templates_render_every_section() -> None:
    from pkgcache_suite.proxy import report

    snap = {"total": {"hit": 2, "miss": 1}, "daily": {"2026-11-25": {"hit": 2, "miss": 1}}, "uptime": 5.0,
            "by_repo": {"mirror.example": {"hit": 2, "miss": 1}}, "by_client": {"10.0.0.0/24": {"hit": 2}},
            "recent": [{"when": 0, "event": "hit", "url": "http://mirror.example/<a>.deb", "client": "10.0.0.0/24",
                        "bytes": 5}]}
    maint = {"size": {"files": 1, "bytes": 5}, "runs": [{"command": "verify", "when": 0, "checked": 1}],
             "orphans": {"m/old.deb": 0}, "damaged": {"m/bad.deb": "size 3, expected 5"}}
    view = dashboard(snap, {"cache_dir": "/c"}, maint, (10, 5))
    page = report.render("dashboard.html", result=None, problems=["disk nearly full"], healthy=False,
                         csrf="t", admin=True, signed_in=True, **view)
    for words in ("Hit ratio (requests)", "mirror.example", "10.0.0.0/24", "2026-11-25", "checked: 1",
                  "m/old.deb", "size 3, expected 5", "disk nearly full", "Unhealthy", 'value="t"'):
        assert words in page
    # the open page: no client networks, no token, no actions
    view = dashboard(report.for_anyone(snap), {"cache_dir": "/c"}, maint, (10, 5), clients=False)
    page = report.render("dashboard.html", result=None, problems=[], healthy=True, csrf="", admin=True,
                         signed_in=False, **view)
    assert "10.0.0.0/24" not in page and 'name="csrf"' not in page and "Sign in as the admin" in page
    assert "http://mirror.example/&lt;a&gt;.deb" in page  # escaped
    assert "Client setup" in report.render("setup.html", healthy=True, **setup("http://192.0.2.1:8080"))


@pytest.mark.parametrize("info,words", [
    ({"wanted_urls": 3, "datastore": "/media/stick/pkgcache", "datastore_safe_to_remove": True},
     "3 URLs in the wanted list; the datastore is up to date: safe to remove"),
    ({"wanted_urls": 1, "datastore": "/media/stick/pkgcache", "datastore_safe_to_remove": False},
     "1 URL in the wanted list; being written to the datastore"),
    ({"wanted_urls": 0, "datastore": None}, "wanted list empty"),
    ({"wanted_urls": 2, "wanted_requests": 1, "datastore": "/media/stick/pkgcache", "datastore_safe_to_remove": True},
     "2 URLs in the wanted list, 1 package request; the datastore is up to date: safe to remove"),
])
def test_the_page_says_when_the_stick_may_go(info: dict, words: str) -> None:
    assert dashboard({}, info, {}, None)["wanted"] == words
