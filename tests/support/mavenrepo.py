"""A Maven 2 layout repository built by the tests: POMs, jars, their .sha1 files, SNAPSHOT metadata."""

from __future__ import annotations

import hashlib
import io
import zipfile

Coordinates = tuple[str, str, str]  # group, artifact, version
STAMP = "20240102.030405"


def _jar(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        z.writestr(f"{name}.txt", name)
    return buf.getvalue()


def _pom(g: str, a: str, v: str, deps: list[Coordinates]) -> bytes:
    d = "".join(f"<dependency><groupId>{dg}</groupId><artifactId>{da}</artifactId><version>{dv}</version>"
                f"</dependency>" for dg, da, dv in deps)
    test = "<dependency><groupId>org.example</groupId><artifactId>only-in-tests</artifactId><version>9</version>" \
           "<scope>test</scope></dependency>"
    return (f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version><packaging>jar</packaging>"
            f"<dependencies>{d}{test}</dependencies></project>").encode()


def directory(g: str, a: str, v: str) -> str:
    return f"{g.replace('.', '/')}/{a}/{v}"


def file_version(v: str) -> str:
    """What a version's files are named by: a SNAPSHOT's are timestamped."""
    return v.replace("-SNAPSHOT", f"-{STAMP}-1") if v.endswith("-SNAPSHOT") else v


def artifact(g: str, a: str, v: str, deps: list[Coordinates] | None = None) -> dict[str, bytes]:
    """{path: bytes} of one artifact: POM and jar, each with its .sha1, and a SNAPSHOT's metadata."""
    fv = file_version(v)
    out: dict[str, bytes] = {}
    for ext, body in (("pom", _pom(g, a, v, deps or [])), ("jar", _jar(f"{a}-{fv}"))):
        path = f"{directory(g, a, v)}/{a}-{fv}.{ext}"
        out[path], out[path + ".sha1"] = body, hashlib.sha1(body).hexdigest().encode()
    if v.endswith("-SNAPSHOT"):
        versions = "".join(f"<snapshotVersion><extension>{e}</extension><value>{fv}</value>"
                           f"<updated>{STAMP.replace('.', '')}</updated></snapshotVersion>" for e in ("jar", "pom"))
        meta = (f"<metadata><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version><versioning>"
                f"<snapshot><timestamp>{STAMP}</timestamp><buildNumber>1</buildNumber></snapshot>"
                f"<lastUpdated>{STAMP.replace('.', '')}</lastUpdated><snapshotVersions>{versions}</snapshotVersions>"
                "</versioning></metadata>").encode()
        path = f"{directory(g, a, v)}/maven-metadata.xml"
        out[path], out[path + ".sha1"] = meta, hashlib.sha1(meta).hexdigest().encode()
    return out


def project_pom(extension: Coordinates) -> str:
    """A project whose build extension Maven's core resolves, with its dependencies, before any plugin runs:
    `mvn validate` then resolves through the repository with nothing else to download."""
    g, a, v = extension
    return ('<project><modelVersion>4.0.0</modelVersion><groupId>t</groupId><artifactId>proj</artifactId>'
            f"<version>1</version><build><extensions><extension><groupId>{g}</groupId><artifactId>{a}</artifactId>"
            f"<version>{v}</version></extension></extensions></build></project>")
