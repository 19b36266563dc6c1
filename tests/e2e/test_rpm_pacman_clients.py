"""dnf, zypper and pacman for real, configured as their recipes say (support/rpmpac.py reads the lines of
fedora.md, opensuse.md and arch.md as written): cold, warm (their own caches cleared: no package file goes
upstream twice) and offline in auto and on."""

from __future__ import annotations

from pathlib import Path

from support.origin import Origin
from support.roundtrip import round_trip
from support.rpmpac import FEDORA, build_pacman_repo, build_rpm_repo, dnf_download, pacman_download, zypper_download


def test_dnf(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_rpm_repo(origin.root, where=FEDORA)
    round_trip(dnf_download, package, origin, start_proxy, tmp_path)


def test_zypper(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_rpm_repo(origin.root)
    round_trip(zypper_download, package, origin, start_proxy, tmp_path)


def test_pacman(origin: Origin, start_proxy, tmp_path: Path) -> None:
    package = build_pacman_repo(origin.root)
    round_trip(pacman_download, package, origin, start_proxy, tmp_path)
