"""What the report pages say, in words and human units, computed from the counters and facts: pure, so the
wording is tested without a proxy.  The templates only lay it out."""

from __future__ import annotations

import time
from typing import Any

from pkgcache_suite.units import human_duration, human_size, percent

HIT_EVENTS = ("hit", "revalidated", "stale", "coalesced", "known_404")
MISS_EVENTS = ("miss", "failed", "offline_miss")
EVENT_WORDS = {"hit": "hit", "revalidated": "hit, revalidated", "stale": "stale copy (upstream failed)",
               "coalesced": "hit, shared download", "known_404": "known 404", "miss": "miss, downloaded",
               "failed": "download failed", "offline_miss": "offline miss, recorded", "pass": "passed through",
               "tunnel": "HTTPS tunnelled, not cached",
               "republished": "republished upstream: cached copy dropped, fetched again when asked",
               "bad_signature": "upstream signature does not verify: refused, last good copy served"}
TUNNEL_HINT = ("pkgcache sees only the host of an HTTPS tunnel, so nothing in it is cached. To cache a repository "
               "reached over HTTPS, add its host to pkgcache_intercept_hosts and have its clients trust "
               "mitmproxy's CA (recipes/https.md), or point them at an http:// mirror.")


def ratios(c: dict[str, int]) -> dict[str, Any]:
    hits = sum(c.get(e, 0) for e in HIT_EVENTS)
    misses = sum(c.get(e, 0) for e in MISS_EVENTS)
    cached, upstream = c.get("bytes_from_cache", 0), c.get("bytes_from_upstream", 0)
    return {"hits": hits, "misses": misses, "cacheable": hits + misses, "requests": hits + misses + c.get("pass", 0),
            "req_ratio": percent(hits, hits + misses), "byte_ratio": percent(cached, cached + upstream),
            "from_cache": human_size(cached), "from_upstream": human_size(upstream),
            "fraction": hits / (hits + misses) if hits + misses else 0.0}


def _when(ts: float, with_day: bool = False) -> str:
    return time.strftime("%Y-%m-%d %H:%M" if with_day else "%H:%M:%S", time.localtime(ts))


def upstream_words(mode: str, hosts: dict[str, str]) -> dict[str, str]:
    """Upstream and offline state as a person says it."""
    if mode == "on":
        return {"word": "Offline", "css": "warn",
                "detail": "offline mode is on: nothing is fetched, misses are recorded in the wanted list"}
    down = sorted(h for h, state in hosts.items() if state == "down")
    if down:
        return {"word": "Unreachable" if len(down) == len(hosts) else "Partly unreachable", "css": "bad",
                "detail": f"no answer from {', '.join(down[:5])}" + (" and more" if len(down) > 5 else "")
                + ("; stale copies are served, misses recorded" if mode == "auto" else "")}
    detail = f"{len(hosts)} upstream host{'s' if len(hosts) != 1 else ''} answering" if hosts \
        else "no upstream contacted yet"
    if mode == "off":
        detail += "; offline mode is off (always online)"
    return {"word": "Online", "css": "ok", "detail": detail}


def _breakdown(title: str, column: str, rows: dict[str, dict[str, int]]) -> dict[str, Any]:
    out = [{"name": name, **ratios(c)} for name, c in rows.items()]
    out.sort(key=lambda r: -r["requests"])
    return {"title": title, "column": column, "rows": out[:50]}


def _run_text(run: dict[str, Any]) -> str:
    parts = []
    for k, v in run.items():
        if k in ("command", "when"):
            continue
        if isinstance(v, (list, dict)):
            v = len(v)
        label = k.replace("_", " ")
        parts.append(f"{label}: {human_size(v) if k in ('freed', 'bytes') and isinstance(v, int) else v}")
    return ", ".join(parts)


def dashboard(snap: dict[str, Any], info: dict[str, Any], maint: dict[str, Any],
              disk: tuple[int, int] | None, max_size: int = 0, clients: bool = True) -> dict[str, Any]:
    """clients: whether the page may say who the clients are (the admin's view)."""
    size = maint.get("size", {})
    wanted = info.get("wanted_urls", 0)
    history = []
    for day, c in sorted(snap.get("daily", {}).items(), reverse=True):
        r = ratios(c)
        history.append({"day": day, "requests": r["requests"], "ratio": r["req_ratio"],
                        "width": round(100 * r["fraction"]), "from_cache": r["from_cache"],
                        "from_upstream": r["from_upstream"]})
    return {
        "t": ratios(snap.get("total", {})),
        "counting_since": _when(snap.get("counting_since", time.time()), with_day=True),
        "uptime": human_duration(snap.get("uptime", 0.0)),
        "cache": {"size": human_size(size.get("bytes", 0)) + ("" if size.get("counted", True) else " so far"),
                  "files": size.get("files", 0), "counting": not size.get("counted", True),
                  "free": human_size(disk[1]) if disk else "unknown", "dir": info.get("cache_dir") or "none",
                  "limit": human_size(max_size) if max_size else ""},
        "upstream": upstream_words(info.get("offline_mode", "auto"), info.get("upstream", {})),
        "downloads": info.get("downloads_in_progress", 0),
        "wanted": (f"{wanted} URL{'s' if wanted != 1 else ''} in the wanted list" if wanted else "wanted list empty")
        + (f", {stated} package request{'s' if stated != 1 else ''}" if (stated := info.get("wanted_requests", 0))
           else "")
        + ("; the datastore is up to date: safe to remove" if info.get("datastore_safe_to_remove")
           else "; being written to the datastore" if info.get("datastore") else ""),
        "recent": [{"when": _when(r["when"]), "event": EVENT_WORDS.get(r["event"], r["event"]), "url": r["url"],
                    "client": r["client"], "size": human_size(r["bytes"]) if r["bytes"] else ""}
                   for r in snap.get("recent", [])],
        "history": history,
        "tunnels": sorted(({"host": h, "count": c["tunnel"]} for h, c in snap.get("by_host", {}).items()
                           if c.get("tunnel")), key=lambda r: -r["count"])[:50],
        "tunnel_hint": TUNNEL_HINT,
        "alerts": [f"The signature of {url} does not verify ({why}), since {_when(since, with_day=True)}: it is "
                   f"not stored, and the last good copy is served." for url, why, since in
                   sorted(maint.get("bad_signatures", {}).values(), key=lambda v: v[2])],
        "breakdowns": [_breakdown("By ecosystem", "Ecosystem", snap.get("by_ecosystem", {})),
                       _breakdown("By repository", "Repository", snap.get("by_repo", {}))]
        + ([_breakdown("By client network", "Network", snap.get("by_client", {}))] if clients else []),
        "runs": [{"when": _when(r.get("when", 0), with_day=True), "command": r.get("command", ""),
                  "result": _run_text(r)} for r in reversed(maint.get("runs", [])[-10:])],
        "problem_files": [
            {"title": "Orphans (deleted by expire after the grace period)", "column": "Orphan since",
             "rows": [{"key": k, "why": _when(since, with_day=True)}
                      for k, since in sorted(maint.get("orphans", {}).items())[:200]]},
            {"title": "Damaged files (from the last verify)", "column": "Problem",
             "rows": [{"key": k, "why": why} for k, why in sorted(maint.get("damaged", {}).items())[:200]]},
            {"title": "Withdrawn upstream (kept and served; their index no longer lists them)", "column": "Since",
             "rows": [{"key": k, "why": f"{_when(since, with_day=True)}, no longer in {index}"}
                      for k, (index, since) in sorted(maint.get("withdrawn", {}).items())[:200]]}],
    }


CLIENTS = (
    ("apt (Debian, Ubuntu)", "echo 'Acquire::http::Proxy \"{proxy}\";' | sudo tee /etc/apt/apt.conf.d/01pkgcache", ""),
    ("dnf / yum (Fedora, RHEL)", "echo 'proxy={proxy}' | sudo tee -a /etc/dnf/dnf.conf",
     "Replace metalink= with one baseurl= mirror in /etc/yum.repos.d/*.repo, or every client picks another mirror."),
    ("zypper (openSUSE)", "export http_proxy={proxy}\nsudo --preserve-env=http_proxy zypper refresh", ""),
    ("pacman (Arch)", "export http_proxy={proxy}\nsudo --preserve-env=http_proxy pacman -Syu",
     "Use an http:// Server in /etc/pacman.d/mirrorlist."),
    ("pip", "pip config set global.proxy {proxy}", "pip's default index is HTTPS: through this proxy it is "
     "tunnelled, not cached (the dashboard counts the tunnels), until pkgcache intercepts its host "
     "(pkgcache_intercept_hosts) and pip trusts mitmproxy's CA (recipes/https.md). An http:// index "
     "(global.index-url, global.trusted-host) is cached as it is."),
    ("npm", "npm config set proxy {proxy}\nnpm config set https-proxy {proxy}", "npm's default registry is "
     "HTTPS: tunnelled, not cached, until pkgcache intercepts its host and npm trusts mitmproxy's CA "
     "(recipes/https.md). An http:// registry is cached as it is."),
)


def setup(proxy: str) -> dict[str, Any]:
    return {"proxy": proxy, "clients": [{"name": name, "lines": lines.format(proxy=proxy),
                                         "note": note.format(proxy=proxy)} for name, lines, note in CLIENTS]}
