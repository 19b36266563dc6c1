"""The CI farm's ecosystems as pure policy: how their URLs are classified and counted, what a registry's URLs
name, and what `pkgcache fetch` follows from a Go module, a Maven POM and a registry manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pkgcache_suite.policy import oci
from pkgcache_suite.policy.rules import Classifier, Kind
from pkgcache_suite.resolve import gomodules, mavenclosure, ociclosure
from pkgcache_suite.stick.bearer import challenge

D = "sha256:" + "ab" * 32

CLASSIFIER = Classifier()


@pytest.mark.parametrize("path, accept, kind, ecosystem", [
    ("/mods.example/dem/@v/v0.1.0.zip", "", Kind.IMMUTABLE, "go"),
    ("/mods.example/dem/@v/v0.0.0-20240102030405-0123456789ab.mod", "", Kind.IMMUTABLE, "go"),
    ("/mods.example/dem/@v/v2.0.0+incompatible.info", "", Kind.IMMUTABLE, "go"),
    ("/mods.example/dem/@v/master.info", "", Kind.VOLATILE, "go"),  # a branch: moves
    ("/mods.example/dem/@v/list", "", Kind.VOLATILE, "go"),
    ("/mods.example/dem/@latest", "", Kind.VOLATILE, "go"),
    ("/maven2/org/example/lib/1.0/lib-1.0.jar", "", Kind.IMMUTABLE, "maven"),
    ("/maven2/org/example/lib/1.0/lib-1.0-sources.jar.sha1", "", Kind.IMMUTABLE, "maven"),
    ("/maven2/org/example/lib/maven-metadata.xml", "", Kind.VOLATILE, "maven"),
    ("/maven2/org/example/lib/1.1-SNAPSHOT/lib-1.1-20240102.030405-1.jar", "", Kind.VOLATILE, "maven"),
    ("/maven2/org/example/lib/1.1-SNAPSHOT/lib-1.1-SNAPSHOT.zip", "", Kind.VOLATILE, "maven"),
    (f"/v2/team/app/blobs/{D}", "", Kind.IMMUTABLE, "oci"),
    (f"/v2/team/app/manifests/{D}", "", Kind.IMMUTABLE, "oci"),
    ("/v2/team/app/manifests/1.4", "", Kind.VOLATILE, "oci"),
    ("/v2/", "", Kind.PASS, "other"),  # the version check: never stored
    ("/v2/team/app/tags/list", "", Kind.PASS, "other"),
    ("/token", "", Kind.PASS, "other"),  # a token service
    ("/crates/dem-0.1.0.crate", "", Kind.IMMUTABLE, "cargo"),
    ("/index/3/d/dem", "text/plain", Kind.VOLATILE, "cargo"),
    ("/index/3/d/dem", "text/html", Kind.PASS, "other"),
    ("/debian/pool/main/h/hello/hello_1.0_amd64.deb", "", Kind.IMMUTABLE, "debian"),
])
def test_classified_and_counted_by_ecosystem(path: str, accept: str, kind: Kind, ecosystem: str) -> None:
    assert CLASSIFIER.explain("http://mirror.example" + path, path, accept) == (kind, ecosystem)


@pytest.mark.parametrize("path, digest", [
    (f"/v2/team/app/blobs/{D}", "ab" * 32), (f"/v2/a/b/c/manifests/{D}", "ab" * 32),
    (f"/v2/team/app/blobs/{D}?ns=registry.example", "ab" * 32),
    ("/v2/team/app/manifests/latest", None), ("/v2/team/app/blobs/sha512:00", None), ("/other/" + D, None)])
def test_named_digest(path: str, digest: str | None) -> None:
    assert oci.named_digest(path) == digest


def test_manifest_variants_are_the_set_of_accepted_types() -> None:
    a = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9"
    b = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, text/html"
    only = "application/vnd.docker.distribution.manifest.v2+json"
    path = "/v2/team/app/manifests/1"
    assert oci.manifest_variant(path, a) == oci.manifest_variant(path, b) != oci.manifest_variant(path, only)
    assert oci.manifest_variant(f"/v2/team/app/manifests/{D}", a) is None  # its digest fixes its bytes
    assert oci.manifest_variant("/v2/team/app/blobs/x", a) is None
    assert oci.acceptable("application/vnd.oci.image.index.v1+json", a)
    assert not oci.acceptable("application/vnd.oci.image.index.v1+json", only)
    assert oci.acceptable("application/vnd.oci.image.manifest.v1+json", None)


@pytest.mark.parametrize("ref, url", [
    ("registry.example/team/app:1.4", "https://registry.example/v2/team/app/manifests/1.4"),
    ("http://127.0.0.1:5000/app:1", "http://127.0.0.1:5000/v2/app/manifests/1"),
    (f"registry.example:5000/a/b/c@{D}", f"https://registry.example:5000/v2/a/b/c/manifests/{D}"),
])
def test_image_references(ref: str, url: str) -> None:
    assert oci.reference_url(ref) == url


@pytest.mark.parametrize("ref", ["alpine:3", "registry.example/App:1", "registry.example/app", "registry.example/../x:1",
                                 "registry.example/app:1 other", "file:///etc/passwd:1", "registry.example/app@md5:00"])
def test_image_references_refused(ref: str) -> None:
    with pytest.raises(ValueError):
        oci.reference_url(ref)


def test_bearer_challenge() -> None:
    assert challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"') == {
        "realm": "https://auth.example/token", "service": "reg", "scope": "repository:a:pull"}
    assert challenge('Basic realm="x"') is None
    assert challenge('Bearer realm="file:///etc/passwd"') is None


def test_go_module_file_names_its_siblings_and_requirements(tmp_path: Path) -> None:
    mod = tmp_path / "mod"
    mod.write_text("module mods.example/dem\n\nrequire (\n\tmods.example/Dep v1.2.0 // indirect\n)\n")
    base = "http://h.example/mods.example/dem/@v/"
    assert gomodules.learn(base + "v0.1.0.mod", mod) == [
        base + "v0.1.0.info", base + "v0.1.0.zip", "http://h.example/mods.example/!dep/@v/v1.2.0.mod"]
    assert gomodules.learn(base + "v0.1.0.zip", mod) == [base + "v0.1.0.mod", base + "v0.1.0.info"]
    assert gomodules.learn(base + "list", mod) == []


def test_maven_pom_names_its_jar_parent_and_needed_dependencies(tmp_path: Path) -> None:
    pom = tmp_path / "pom"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><parent><groupId>org.example</groupId>'
                   "<artifactId>parent</artifactId><version>3</version></parent><artifactId>lib</artifactId>"
                   "<version>1.0</version><properties><dep.version>2.0</dep.version></properties><dependencies>"
                   "<dependency><groupId>org.example</groupId><artifactId>a</artifactId><version>${dep.version}</version>"
                   "</dependency><dependency><groupId>org.example</groupId><artifactId>t</artifactId><version>1"
                   "</version><scope>test</scope></dependency><dependency><groupId>org.example</groupId>"
                   "<artifactId>s</artifactId><version>1-SNAPSHOT</version></dependency><dependency><groupId>x"
                   "</groupId><artifactId>bom-managed</artifactId></dependency></dependencies></project>")
    base = "http://m.example/maven2"
    got = mavenclosure.learn(f"{base}/org/example/lib/1.0/lib-1.0.pom", pom)
    assert got == [f"{base}/org/example/lib/1.0/lib-1.0.pom.sha1", f"{base}/org/example/lib/1.0/lib-1.0.jar",
                   f"{base}/org/example/lib/1.0/lib-1.0.jar.sha1",
                   f"{base}/org/example/parent/3/parent-3.pom", f"{base}/org/example/parent/3/parent-3.pom.sha1",
                   f"{base}/org/example/a/2.0/a-2.0.pom", f"{base}/org/example/a/2.0/a-2.0.pom.sha1",
                   f"{base}/org/example/a/2.0/a-2.0.jar", f"{base}/org/example/a/2.0/a-2.0.jar.sha1",
                   f"{base}/org/example/s/1-SNAPSHOT/maven-metadata.xml"]


def test_registry_manifests_name_platforms_and_blobs(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.write_text(json.dumps({"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"architecture": "amd64", "os": "linux"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"architecture": "arm64", "os": "linux"}},
        {"digest": "../../etc", "platform": {"architecture": "amd64"}}]}))
    url = "http://r.example/v2/team/app/manifests/1"
    assert ociclosure.learn(url, index, ["arm64"]) == ["http://r.example/v2/team/app/manifests/sha256:" + "2" * 64]
    assert len(ociclosure.learn(url, index, ["s390x"])) == 2  # none of ours: every platform
    image = tmp_path / "image"
    image.write_text(json.dumps({"config": {"digest": "sha256:" + "3" * 64},
                                 "layers": [{"digest": "sha256:" + "4" * 64}, {"digest": "bad"}]}))
    assert ociclosure.learn(url, image) == ["http://r.example/v2/team/app/blobs/sha256:" + "3" * 64,
                                            "http://r.example/v2/team/app/blobs/sha256:" + "4" * 64]
    assert ociclosure.problem("http://r.example/v2/x/blobs/sha256:" + "3" * 64, "3" * 64) is None
    assert "digest mismatch" in (ociclosure.problem("http://r.example/v2/x/blobs/sha256:" + "3" * 64, "5" * 64) or "")
