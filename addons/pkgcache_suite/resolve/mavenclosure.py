"""What `pkgcache fetch` brings for a Maven file an offline client missed: the artifact's POM, jar and their
.sha1 files, and, from the POM, its parent and the dependencies a build needs (a SNAPSHOT's through its
maven-metadata.xml), so a project needs one trip.

Maven stops at the first POM it cannot have, so the wanted list names only the first of a tree; the rest is
read from the POMs fetched in the trip.  What Maven would compute from properties it cannot see here (a
version from a BOM, an interpolated name) is left to the next trip.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

MAX_POM = 4 << 20
SKIPPED_SCOPES = {"test", "provided", "system"}
# BASE/GROUP/PATH/ARTIFACT/VERSION/ARTIFACT-VERSION[-CLASSIFIER].EXT
ARTIFACT = re.compile(r"^(?P<dir>.+/(?P<a>[^/]+)/(?P<v>[^/]+))/(?P=a)-(?P<fv>[^/]*?)\.(?P<ext>pom|jar)$")
METADATA = re.compile(r"^(?P<dir>.+/(?P<a>[^/]+)/(?P<v>[^/]+-SNAPSHOT))/maven-metadata\.xml$")


def _text(el: ET.Element | None, name: str) -> str | None:
    child = None if el is None else el.find(name)
    return child.text.strip() if child is not None and child.text else None


def _parse(path: Path) -> ET.Element:
    """A POM or metadata file without its namespace, bounded in size."""
    with open(path, "rb") as f:
        data = f.read(MAX_POM + 1)
    if len(data) > MAX_POM:
        raise ValueError("larger than any POM")
    root = ET.fromstring(data)
    for el in root.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]
    return root


def artifact_dir(base: str, group: str, artifact: str, version: str) -> str:
    return f"{base}/{group.replace('.', '/')}/{artifact}/{version}"


def _files(directory: str, artifact: str, version: str, packaging: str = "jar") -> list[str]:
    stems = [f"{directory}/{artifact}-{version}.pom"]
    if packaging != "pom":
        stems.append(f"{directory}/{artifact}-{version}.jar")
    return [u for s in stems for u in (s, s + ".sha1")]


def claims(url: str) -> bool:
    return ARTIFACT.match(url) is not None or METADATA.match(url) is not None


def learn(url: str, path: Path) -> list[str]:
    """A fetched POM, jar or SNAPSHOT metadata: the URLs to fetch next."""
    if m := METADATA.match(url):
        return _snapshot_files(m.group("dir"), m.group("a"), _parse(path))
    m = ARTIFACT.match(url)
    if m is None:
        return []
    if m.group("ext") == "jar":  # its POM is the version's, whatever the jar's classifier
        fv = m.group("fv") if m.group("v").endswith("-SNAPSHOT") else m.group("v")
        pom_url = f"{m.group('dir')}/{m.group('a')}-{fv}.pom"
        return [f"{url}.sha1", pom_url, pom_url + ".sha1"]
    pom = _parse(path)
    props = {k: v for k, v in _project_values(pom).items() if v is not None}
    group, artifact, version = props.get("project.groupId"), m.group("a"), m.group("v")
    if group is None:
        return []
    tail = f"/{group.replace('.', '/')}/{artifact}/{version}"
    if not m.group("dir").endswith(tail):
        return []
    base = m.group("dir")[: -len(tail)]
    more = [u for u in _files(m.group("dir"), artifact, m.group("fv"), _text(pom, "packaging") or "jar") if u != url]
    parent = _parent(pom, props)
    return more + (_coordinates(base, *parent, packaging="pom") if parent else []) + [
        u for g, a, v in _needed(pom, props) for u in _coordinates(base, g, a, v)]


def _project_values(pom: ET.Element) -> dict[str, str | None]:
    parent = pom.find("parent")
    values: dict[str, str | None] = {
        "project.groupId": _text(pom, "groupId") or _text(parent, "groupId"),
        "project.version": _text(pom, "version") or _text(parent, "version")}
    props = pom.find("properties")
    for el in [] if props is None else list(props):
        values[el.tag] = el.text.strip() if el.text else None
    return values


def _parent(pom: ET.Element, props: dict[str, str]) -> tuple[str, str, str] | None:
    """(group, artifact, version) of the parent POM (a POM only: a parent has no jar)."""
    el = pom.find("parent")
    if el is None:
        return None
    g, a, v = (_fill(_text(el, n), props) for n in ("groupId", "artifactId", "version"))
    return (g, a, v) if g and a and v else None


def _needed(pom: ET.Element, props: dict[str, str]) -> list[tuple[str, str, str]]:
    """(group, artifact, version) of every dependency a build resolves."""
    out = []
    deps = pom.find("dependencies")
    for d in [] if deps is None else deps.findall("dependency"):
        if (_text(d, "scope") or "compile") in SKIPPED_SCOPES or _text(d, "optional") == "true":
            continue
        out.append((_text(d, "groupId"), _text(d, "artifactId"), _text(d, "version")))
    return [(g, a, v) for g, a, v in ((_fill(x, props) for x in t) for t in out) if g and a and v]


def _fill(value: str | None, props: dict[str, str]) -> str | None:
    """${name} from the POM's own properties; None when something else would be needed."""
    if value is None:
        return None
    filled = re.sub(r"\$\{([^}]+)\}", lambda m: props.get(m.group(1).removeprefix("pom."), m.group(0)), value)
    return None if "${" in filled or filled.startswith(("[", "(")) else filled


def _coordinates(base: str, group: str, artifact: str, version: str, packaging: str = "jar") -> list[str]:
    directory = artifact_dir(base, group, artifact, version)
    if version.endswith("-SNAPSHOT"):
        return [f"{directory}/maven-metadata.xml"]
    return _files(directory, artifact, version, packaging)


def _snapshot_files(directory: str, artifact: str, meta: ET.Element) -> list[str]:
    """The timestamped POM and jar a SNAPSHOT's metadata names (their .sha1 files with them)."""
    out = []
    for sv in meta.iter("snapshotVersion"):
        ext, value = _text(sv, "extension"), _text(sv, "value")
        if ext in ("pom", "jar") and value and not _text(sv, "classifier"):
            out += [f"{directory}/{artifact}-{value}.{ext}", f"{directory}/{artifact}-{value}.{ext}.sha1"]
    return out
