"""Monitoring: Prometheus text exposition (prometheus-client) and a health verdict, for the report host.

``http://pkgcache/metrics`` is scraped through the proxy like any other URL
(a Prometheus job with ``proxy_url`` set to pkgcache), so no second port opens.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pkgcache_suite.stats import EVENTS

LOW_DISK_FRACTION = 0.05
LOW_DISK_BYTES = 1 << 30


class _Snapshot:
    """A collector over one stats snapshot and the cache's facts (rebuilt per scrape: counters are in memory)."""

    def __init__(self, snap: dict[str, Any], info: dict[str, Any], disk: tuple[int, int] | None) -> None:
        self.snap, self.info, self.disk = snap, info, disk

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("pkgcache_requests", "Requests by what the cache did, class and repository",
                                       labels=["outcome", "class", "repository"])
        data = CounterMetricFamily("pkgcache_bytes", "Bytes sent from the cache or fetched from upstream",
                                   labels=["source", "class", "repository"])
        for kind, counts in self.snap.get("by_kind", {}).items():
            for event in EVENTS:
                requests.add_metric([event, kind, ""], counts.get(event, 0))
            data.add_metric(["cache", kind, ""], counts.get("bytes_from_cache", 0))
            data.add_metric(["upstream", kind, ""], counts.get("bytes_from_upstream", 0))
        for repo, counts in self.snap.get("by_repo", {}).items():
            for event in EVENTS:
                requests.add_metric([event, "", repo], counts.get(event, 0))
            data.add_metric(["cache", "", repo], counts.get("bytes_from_cache", 0))
            data.add_metric(["upstream", "", repo], counts.get("bytes_from_upstream", 0))
        by_eco = CounterMetricFamily("pkgcache_ecosystem_requests", "Requests by what the cache did and ecosystem "
                                     "(the shipped rules file that knows the URL: debian, rpm, cargo, oci, ...)",
                                     labels=["outcome", "ecosystem"])
        eco_bytes = CounterMetricFamily("pkgcache_ecosystem_bytes", "Bytes sent from the cache or fetched from "
                                        "upstream, by ecosystem", labels=["source", "ecosystem"])
        for eco, counts in self.snap.get("by_ecosystem", {}).items():
            for event in EVENTS:
                by_eco.add_metric([event, eco], counts.get(event, 0))
            eco_bytes.add_metric(["cache", eco], counts.get("bytes_from_cache", 0))
            eco_bytes.add_metric(["upstream", eco], counts.get("bytes_from_upstream", 0))
        yield requests
        yield data
        yield by_eco
        yield eco_bytes
        yield CounterMetricFamily("pkgcache_upstream_errors", "Downloads that failed upstream or could not be stored",
                                  value=self.snap.get("total", {}).get("failed", 0))
        yield GaugeMetricFamily("pkgcache_downloads_in_progress", "Downloads in progress",
                                value=self.info.get("downloads_in_progress", 0))
        yield GaugeMetricFamily("pkgcache_cache_entries", "Files in the cache index", value=self.info.get("entries", 0))
        yield GaugeMetricFamily("pkgcache_cache_bytes", "Bytes of the files in the cache index",
                                value=self.info.get("cache_bytes", 0))
        yield GaugeMetricFamily("pkgcache_uptime_seconds", "Seconds since the counters started",
                                value=time.time() - self.snap.get("started", time.time()))
        if self.disk is not None:
            yield GaugeMetricFamily("pkgcache_disk_free_bytes", "Free space on the cache's disk", value=self.disk[1])
            yield GaugeMetricFamily("pkgcache_disk_size_bytes", "Size of the cache's disk", value=self.disk[0])


def disk(root: Path | None) -> tuple[int, int] | None:
    """(total, free) bytes of the cache's file system."""
    if root is None:
        return None
    try:
        usage = shutil.disk_usage(root)
    except OSError:
        return None
    return usage.total, usage.free


def render(snap: dict[str, Any], info: dict[str, Any], root: Path | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snap, info, disk(root)))  # type: ignore[arg-type]
    return generate_latest(registry)


def health(root: Path | None) -> list[str]:
    """What is wrong with the cache, in words; empty when it is healthy."""
    if root is None:
        return ["no cache is configured"]
    problems = []
    probe = root / ".pkgcache" / f".health-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        problems.append(f"the cache at {root} cannot be written: {e.strerror}")
    usage = disk(root)
    if usage is not None:
        total, free = usage
        if free < LOW_DISK_BYTES or free < total * LOW_DISK_FRACTION:
            problems.append(f"the cache's disk is nearly full: {free >> 20} MiB free of {total >> 20} MiB")
    return problems
