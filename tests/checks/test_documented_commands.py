"""Every command block of the README, the recipes and docs/ is run as written by a named test, or says here
why it cannot run on this machine; a new or changed block fails this check until one does.

A block is named by its file, its place among the file's fenced blocks and its first line, so an edit to a
documented command is noticed.  The test named must exist and must read that file's blocks itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

README_TEST = "e2e/test_readme_as_written.py::test_the_readme_as_written_on_default_options"
# (file, block index, start of its first line) -> the test that runs it as written
RUN_BY = {
    ("README.md", 0, "{ python3 -m venv .venv"): README_TEST,
    ("README.md", 2, "echo 'Acquire::http::Proxy"): README_TEST,
    ("README.md", 3, "curl -s -o /dev/null -D -"): README_TEST,
    ("README.md", 4, "apt-get indextargets"): "e2e/test_one_trip.py::test_fresh_offline_machine_installs_after_one_fetch",
    ("docs/offline.md", 0, "apt-get indextargets"): "e2e/test_one_trip.py::test_fresh_offline_machine_installs_after_one_fetch",
    ("docs/offline.md", 1, "curl -sS -x http://PROXY-HOST:8080 http://pkgcache/want -F format=rpm"):
        "e2e/test_one_trip_rpm.py::test_fresh_offline_dnf_client_installs_after_one_fetch",
    ("docs/repositories.md", 1, ".venv/bin/pkgcache serve --set pkgcache_conf="):
        "e2e/test_routing.py::test_mirror_style_urls_on_default_options_reach_the_repositorys_target",
    ("recipes/alpine.md", 0, "export http_proxy="): "e2e/test_apk.py::test_apk_cold_warm_offline_and_one_trip",
    ("recipes/cargo.md", 0, "export CARGO_HTTP_PROXY="): "e2e/test_cargo.py::test_cargo_cold_warm_offline_and_wanted",
    ("recipes/go.md", 0, "export GOPROXY="): "e2e/test_go.py::test_go_cold_warm_offline_and_one_trip",
    ("recipes/containers.md", 1, "skopeo copy"): "e2e/test_oci.py::test_oci_mirror_cold_warm_offline_and_one_trip",
    ("recipes/arch.md", 0, "export http_proxy="): "e2e/test_rpm_pacman_clients.py::test_pacman",
    ("recipes/debian.md", 0, "echo 'Acquire::http::Proxy"): "e2e/test_apt_e2e.py::test_apt_update_and_install_through_proxy_then_from_cache",
    ("recipes/docker.md", 0, "docker build"): "e2e/test_recipes.py::test_docker_build_args_send_a_builds_downloads_through_pkgcache",
    ("recipes/npm.md", 0, "npm config set proxy"): "e2e/test_ecosystems.py::test_npm_cold_warm_and_offline",
    ("recipes/npm.md", 2, "export NODE_EXTRA_CA_CERTS"): "e2e/test_recipes.py::test_npm_https_recipe_adds_the_ca_without_replacing_nodes_bundle",
    ("recipes/opensuse.md", 0, "export http_proxy="): "e2e/test_rpm_pacman_clients.py::test_zypper",
    ("recipes/python.md", 0, "pip config set global.proxy"): "e2e/test_ecosystems.py::test_pip_cold_warm_and_offline",
    ("recipes/python.md", 2, "cat \"$(python3 -c"): "e2e/test_recipes.py::test_pip_https_recipe_keeps_the_usual_trust_store",
    ("recipes/systemd.md", 0, "sudo apt-get install -y python3-venv"): "e2e/test_service.py::test_the_service_command_line_runs_a_cache_and_maintenance_runs_on_it",
    ("recipes/systemd.md", 1, "systemctl status pkgcache"): "e2e/test_service.py::test_the_service_command_line_runs_a_cache_and_maintenance_runs_on_it",
    ("recipes/transparent.md", 0, ".venv/bin/mitmdump -s addons/pkgcache.py --mode transparent"):
        "e2e/test_modes.py::test_transparent_mode_as_the_recipe_says",
    ("recipes/transparent.md", 1, "sysctl -w net.ipv4.ip_forward=1"): "e2e/test_modes.py::test_transparent_mode_as_the_recipe_says",
}
# blocks no test here can run as written, and why; what they depend on is tested on its own
NOT_HERE = {
    ("README.md", 1, "bash .ci/run"): "it is the command that runs these tests",
    ("README.md", 5, ".venv/bin/pkgcache fetch /media/usb/pkgcache"):
        "a stick mounted at /media/usb; the same command on a folder: e2e/test_one_trip.py",
    ("docs/offline.md", 2, "# offline machine: datastore on whichever USB stick"):
        "a real USB stick and udev; simulated events: e2e/test_offline.py",
    ("recipes/cluster.md", 1, ".venv/bin/pkgcache serve --set pkgcache_trusted_front="):
        "three machines; the same option on one machine: e2e/test_cluster.py",
    ("recipes/https.md", 0, ".venv/bin/mitmdump -s addons/pkgcache.py --set pkgcache_intercept_hosts="):
        "a real HTTPS mirror's name; interception of a local one: e2e/test_modes.py",
    ("recipes/npm.md", 1, ".venv/bin/pkgcache serve --set pkgcache_intercept_hosts="):
        "a real registry's name; interception of a local one: e2e/test_modes.py, e2e/test_recipes.py",
    ("recipes/python.md", 1, ".venv/bin/pkgcache serve --set pkgcache_intercept_hosts="):
        "a real index's name; interception of a local one: e2e/test_modes.py, e2e/test_recipes.py",
    ("recipes/systemd.md", 2, "systemctl list-timers pkgcache-maintenance.timer"):
        "systemd is not PID 1 here; the timer's commands run in e2e/test_service.py",
    ("recipes/systemd.md", 4, "systemctl --user daemon-reload"): "systemd is not PID 1 here",
}


def _command_blocks() -> dict[tuple[str, int], str]:
    out = {}
    for f in sorted([ROOT / "README.md", *(ROOT / "recipes").glob("*.md"), *(ROOT / "docs").glob("*.md")]):
        for n, m in enumerate(re.finditer(r"```([a-z]*)\n(.*?)```", f.read_text(), re.S)):
            if m.group(1) == "sh":
                out[(str(f.relative_to(ROOT)), n)] = m.group(2).splitlines()[0]
    return out


def test_every_command_block_is_run_by_a_test_or_says_why_not() -> None:
    blocks = _command_blocks()
    named = {**RUN_BY, **NOT_HERE}
    unnamed = {k: first for k, first in blocks.items() if not any(k == n[:2] and first.startswith(n[2])
                                                                  for n in named)}
    assert not unnamed, f"documented commands no test runs: {unnamed}"
    gone = [n for n in named if n[:2] not in blocks or not blocks[n[:2]].startswith(n[2])]
    assert not gone, f"blocks named here are no longer in the docs as named: {gone}"


@pytest.mark.parametrize("key", sorted(RUN_BY))
def test_the_test_named_exists_and_reads_the_block(key: tuple[str, int, str]) -> None:
    path, _, name = RUN_BY[key].partition("::")
    text = (TESTS / path).read_text()
    assert re.search(rf"(?m)^def {re.escape(name)}\(", text), RUN_BY[key]
    doc = Path(key[0]).name
    # the statement lines are the product's own (proxy/wantpage.py), checked equal to the docs'
    # (checks/test_code_checks.py); tests run them through support/onetrip.py's state_wants
    reads = doc in text or (doc == "README.md" and "README" in text) or "one_liner" in text \
        or "state_wants" in text
    assert reads, f"{RUN_BY[key]} does not read {key[0]}"
