"""A container registry for the tests: Debian's docker-registry (the reference registry) behind bearer-token
auth, the token server the test runs, and images the test builds as OCI layouts and pushes with skopeo."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "pkgcache-test-registry"
ISSUER = "pkgcache-test-tokens"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TokenServer:
    """Issues a signed token for whatever scope is asked (anonymous pulls and the test's pushes alike)."""
    work: Path
    port: int = 0
    asked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = self.work / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def token(self, scope: str) -> str:
        header = {"alg": "RS256", "typ": "JWT",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        access = []
        for s in scope.split():
            kind, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {"iss": ISSUER, "sub": "tester", "aud": SERVICE, "exp": now + 600, "nbf": now - 10, "iat": now,
                  "jti": f"{now}-{len(self.asked)}", "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64(sig)}"

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)
                server.asked.append(self.path)
                token = server.token(" ".join(q.get("scope", [])))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Registry:
    """docker-registry on 127.0.0.1 with its storage in work, requiring tokens from tokens."""
    work: Path
    tokens: TokenServer
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    address: str = "127.0.0.1"
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve HTTPS

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> Registry:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.port = self.port or _free_port()
        config = self.work / "registry.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "version": 0.1, "log": {"level": "info", "formatter": "json"},
            "storage": {"filesystem": {"rootdirectory": str(self.work / "storage")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, **({"tls": {"certificate": str(self.tls[0]), "key": str(self.tls[1])}}
                                           if self.tls else {})},
            "auth": {"token": {"realm": f"http://127.0.0.1:{self.tokens.port}/token", "service": SERVICE,
                               "issuer": ISSUER, "rootcertbundle": str(self.tokens.bundle)}}}))
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "registry.log", "ab"))
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start: " + (self.work / "registry.log").read_text()[-2000:])

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the registry answered, from its log."""
        out = []
        for line in (self.work / "registry.log").read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "http.request.uri" in rec and "http.response.status" in rec:
                out.append((rec["http.request.method"], rec["http.request.uri"], int(rec["http.response.status"])))
        return out

    def count(self, path: str, method: str = "GET") -> int:
        """How many times the registry answered method path with 200 (or 206/307)."""
        return sum(1 for m, p, s in self.requests() if m == method and p == path and s in (200, 206, 307))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def _tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A layer (gzipped tar) and its diff id (the SHA-256 of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, body in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(body), 1700000000
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue(), mtime=0), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


def oci_layout(where: Path, tag: str, layers: list[dict[str, bytes]]) -> dict[str, str]:
    """An OCI image layout with one image of these layers, tagged tag; {role: digest} of what it holds."""
    blobs = where / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return f"sha256:{d}", len(data)

    descs, diff_ids, out = [], [], {}
    for i, files in enumerate(layers):
        body, diff = _tar_gz(files)
        digest, size = put(body)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
        diff_ids.append(diff)
        out[f"layer{i}"] = digest
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdigest, csize = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPES[0],
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                                      "size": csize}, "layers": descs}).encode()
    mdigest, msize = put(manifest)
    out.update(config=cdigest, manifest=mdigest)
    (where / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (where / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST_TYPES[0], "digest": mdigest, "size": msize,
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return out


def skopeo(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("skopeo")
    assert binary, "skopeo is not installed"
    return subprocess.run([binary, "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def push(layout: Path, tag: str, registry: Registry, name: str) -> None:
    r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "tester:secret", f"oci:{layout}:{tag}",
               f"docker://{registry.host}/{name}:{tag}")
    assert r.returncode == 0, r.stdout + r.stderr
