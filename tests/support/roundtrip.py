"""The round every real client goes through: cold, warm with its own cache cleared, offline in auto and on."""

from __future__ import annotations

from pathlib import Path

from support.origin import Origin


def round_trip(client, package: str, origin: Origin, start_proxy, tmp_path: Path) -> None:
    """client(proxy, origin, work_dir) runs the client once and returns its CompletedProcess."""
    cache = tmp_path / "cache"
    proxy = start_proxy(cache_dir=cache)
    for run in ("cold", "warm"):
        r = client(proxy, origin, tmp_path / run)
        assert r.returncode == 0, (run, r.stdout + r.stderr)
    assert origin.count(package) == 1, [e.path for e in origin.log]
    proxy.stop()
    origin.stop()
    for mode in ("auto", "on"):
        p = start_proxy("--set", f"pkgcache_offline={mode}", cache_dir=cache)
        r = client(p, origin, tmp_path / f"offline-{mode}")
        assert r.returncode == 0, (mode, r.stdout + r.stderr, p.log_text()[-3000:])
        p.stop()
