"""The Docker and CI-runner recipes, as written, as far as this machine can run them.

No Docker engine runs here, so the Docker build is represented by what it gives
each RUN step: the recipe's build arguments become that step's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support.ecosystems import serve_npm, serve_pypi
from support.origin import Origin
from support.recipes import block


def _pip_download(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = out.parent / f"{out.name}-home"
    env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy") and not k.startswith("PIP_")},
           "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), **env}
    return subprocess.run([sys.executable, "-m", "pip", "download", "demo", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "--retries", "0", "-d", str(out), *args],
                          capture_output=True, text=True, timeout=180, env=env)


def test_docker_build_args_send_a_builds_downloads_through_pkgcache(origin: Origin, proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin)
    command = block("docker.md", 0, proxy.url.removeprefix("http://"))
    env = dict(re.findall(r"--build-arg (\w+)=(\S+)", command))
    assert env["http_proxy"] == proxy.url
    r = _pip_download(env, tmp_path / "build", "--index-url", f"{origin.base}/simple/",
                      "--trusted-host", f"127.0.0.1:{origin.port}")
    assert r.returncode == 0, r.stderr
    with proxy.client() as c:
        assert c.get(origin.base + wheel).headers["x-cache"] == "HIT"  # the build's download was cached
    daemon = json.loads(block("docker.md", 1, proxy.url.removeprefix("http://")))
    assert daemon["proxies"]["http-proxy"] == proxy.url


def test_ci_runner_variables_as_written(origin: Origin, proxy, tmp_path: Path) -> None:
    wheel = serve_pypi(origin)
    tarball = serve_npm(origin)
    text = block("ci.md", 0, proxy.url.removeprefix("http://"), f"127.0.0.1:{origin.port}")
    env = dict(re.findall(r'^\s+(\w+): "([^"]*)"$', text, re.M))
    for job in ("first", "second"):
        r = _pip_download(env, tmp_path / job)
        assert r.returncode == 0, r.stderr
        n = subprocess.run(["npm", "install", "demo-pkg", "--cache", str(tmp_path / job / "npm-cache"), "--prefix",
                            str(tmp_path / job / "project"), "--no-audit", "--no-fund", "--no-package-lock",
                            "--userconfig", str(tmp_path / job / "npmrc")],
                           capture_output=True, text=True, timeout=180,
                           env={**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy")}, **env})
        assert n.returncode == 0, n.stderr
    assert origin.count(wheel) == 1 and origin.count(tarball) == 1


# -- the HTTPS halves of the pip and npm recipes, against a local HTTPS origin with a test certificate -----------


def _https_origin(tmp_path: Path) -> tuple[Origin, Path]:
    cert, key = tmp_path / "origin-cert.pem", tmp_path / "origin-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    (tmp_path / "tls-origin").mkdir()
    return Origin(tmp_path / "tls-origin", tls=(cert, key)).start(), cert


def _intercepting_proxy(start_proxy, recipe: str, cert: Path, confdir: Path, host: str = "127.0.0.1", n: int = 1):
    """pkgcache started with the --set arguments of the recipe's `pkgcache serve` line (hosts: the test origin)."""
    from support.proxy import wait_for

    line = block(recipe, n)
    sets = re.findall(r"--set (\S+)", line)
    sets = [re.sub(r"=.*", f"={host}", s) if s.startswith("pkgcache_intercept_hosts=") else s for s in sets]
    args = [a for s in sets for a in ("--set", s)]
    proxy = start_proxy(*args, "--set", f"confdir={confdir}", "--set", f"ssl_verify_upstream_trusted_ca={cert}")
    wait_for((confdir / "mitmproxy-ca-cert.pem").exists, what="mitmproxy's CA")
    return proxy


def test_pip_https_recipe_keeps_the_usual_trust_store(start_proxy, tmp_path: Path) -> None:
    origin, cert = _https_origin(tmp_path)
    try:
        wheel = serve_pypi(origin)
        confdir = tmp_path / "mitm"
        proxy = _intercepting_proxy(start_proxy, "python.md", cert, confdir)
        home = tmp_path / "home"
        (home / ".config" / "pip").mkdir(parents=True)
        # a client as the recipe leaves it: no proxy or CA settings of this machine's environment
        machine = ("PIP_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
        env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy") and not k.startswith(machine)},
               "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        script = block("python.md", 2, proxy.url.removeprefix("http://"))
        script = script.replace("mitmproxy-ca-cert.pem", str(confdir / "mitmproxy-ca-cert.pem"))
        script = script.replace("pip config", f"{sys.executable} -m pip config")
        subprocess.run(script, shell=True, check=True, env=env, capture_output=True)
        bundle = (home / ".config" / "pip" / "ca-bundle.pem").read_text()
        assert bundle.count("BEGIN CERTIFICATE") > 2  # the usual bundle, plus pkgcache's CA
        for run in ("first", "second"):
            r = subprocess.run([sys.executable, "-m", "pip", "download", "demo", "--no-deps", "--no-cache-dir",
                                "--disable-pip-version-check", "--retries", "0", "-d", str(tmp_path / run),
                                "--index-url", f"{origin.base}/simple/"], capture_output=True, text=True, env=env,
                               timeout=180)
            assert r.returncode == 0, r.stdout + r.stderr
        assert origin.count(wheel) == 1
    finally:
        origin.stop()


def test_npm_https_recipe_adds_the_ca_without_replacing_nodes_bundle(start_proxy, tmp_path: Path) -> None:
    origin, cert = _https_origin(tmp_path)
    try:
        registry = f"https://localhost:{origin.port}"  # npm checks a certificate by name
        tarball = serve_npm(origin, base=registry)
        confdir = tmp_path / "mitm"
        proxy = _intercepting_proxy(start_proxy, "npm.md", cert, confdir, host="localhost")
        script = block("npm.md", 2, proxy.url.removeprefix("http://"))
        ca = dict(re.findall(r"export (\w+)=(\S+)", script))
        assert set(ca) == {"NODE_EXTRA_CA_CERTS"}  # added to Node's bundle, not replacing it
        for run in ("first", "second"):
            work = tmp_path / run
            work.mkdir()
            env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("proxy")},
                   "npm_config_userconfig": str(work / "npmrc"),
                   "NODE_EXTRA_CA_CERTS": str(confdir / "mitmproxy-ca-cert.pem")}
            for line in script.splitlines():
                if line.startswith("npm "):
                    subprocess.run(line, shell=True, check=True, env=env, capture_output=True)
            r = subprocess.run(["npm", "install", "demo-pkg", "--registry", registry + "/", "--cache",
                                str(work / "npm-cache"), "--prefix", str(work / "project"), "--no-audit", "--no-fund",
                                "--no-package-lock", "--fetch-retries", "0"], capture_output=True, text=True, env=env,
                               timeout=180)
            assert r.returncode == 0, r.stderr
        assert origin.count(tarball) == 1
    finally:
        origin.stop()


def test_https_recipe_debian_ca_installation_as_written(start_proxy, tmp_path: Path) -> None:
    """The Debian row of recipes/https.md, run as written in a mount namespace of its own (the machine's
    trust store is not touched), then curl with nothing but the system trust store."""
    import shutil

    origin, cert = _https_origin(tmp_path)
    try:
        origin.put("/debian/pool/main/h/hello/hello_1.0_all.deb", b"over https")
        confdir = tmp_path / "mitm"
        proxy = _intercepting_proxy(start_proxy, "https.md", cert, confdir, host="localhost", n=0)
        row = next(ln for ln in (Path(__file__).resolve().parents[2] / "recipes" / "https.md").read_text()
                   .splitlines() if ln.startswith("| Debian / Ubuntu |"))
        command = re.search(r"`([^`]+)`", row).group(1)
        shutil.copytree("/etc/ssl", tmp_path / "etc-ssl", symlinks=True)
        shutil.copy(confdir / "mitmproxy-ca-cert.pem", tmp_path / "mitmproxy-ca-cert.pem")
        url = f"https://localhost:{origin.port}/debian/pool/main/h/hello/hello_1.0_all.deb"
        script = (f"mount -t tmpfs none /usr/local/share/ca-certificates && mount --bind {tmp_path / 'etc-ssl'} "
                  f"/etc/ssl && cd {tmp_path} && {command} >/dev/null && "
                  f"for i in 1 2; do curl -sS -x {proxy.url} -o /dev/null -w '%{{http_code}} ' {url}; done")
        r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.split() == ["200", "200"], r.stdout + r.stderr
        assert origin.count("/debian/pool/main/h/hello/hello_1.0_all.deb") == 1
    finally:
        origin.stop()
