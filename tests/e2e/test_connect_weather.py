"""One new connect in a few slow, or refused, while open connections work: apt through pkgcache succeeds
wherever it does direct (and past refused connects, which apt direct does not survive), with no offline
answer (support/netweather.py: its own network namespace, real iptables rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.netweather import in_namespace

pytestmark = pytest.mark.usefixtures("apt_tools")  # iptables and unshare: .ci/run installs them too


@pytest.mark.parametrize("setup", ["embedded", "tier"])
def test_refused_and_slow_connects_cost_a_proxied_client_nothing(tmp_path: Path, setup: str) -> None:
    r = in_namespace(setup, tmp_path)
    assert r["direct"]["rc"] == 0 and r["direct"]["files"] == r["want"], r["direct"]["out"]
    hit = r["weather_direct"]
    assert hit.get("DROP", 0) >= 1, hit  # slow connects met the direct client
    for run in ("cold", "warm"):
        assert r[run]["rc"] == 0 and r[run]["files"] == r["want"], (run, r[run]["out"], r["log"])
    assert r["weather"]["DROP"] > hit["DROP"] and r["weather"]["REJECT"] >= 1, (r["weather"], hit)  # ... the proxy
    assert r["total"].get("offline_miss", 0) == 0, (r["total"], r["log"])
    assert r["warm_package_requests"] == 0  # the warm client's packages all came from the cache
