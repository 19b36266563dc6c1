"""A Go module proxy built by the tests: the GOPROXY protocol's files for a few modules, as static files."""

from __future__ import annotations

import io
import json
import zipfile


def escape(path: str) -> str:
    """A module path as the GOPROXY protocol writes it (an upper-case letter is ! and the letter)."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def module_files(path: str, version: str, requires: dict[str, str] | None = None) -> dict[str, bytes]:
    """{path under the proxy: bytes} of one module version: its list, .info, .mod and .zip."""
    req = "".join(f"require {m} {v}\n" for m, v in (requires or {}).items())
    mod = f"module {path}\n\ngo 1.19\n\n{req}".encode()
    name = path.rsplit("/", 1)[-1]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{path}@{version}/go.mod", mod)
        z.writestr(f"{path}@{version}/{name}.go", f"package {name}\n\nfunc V() string {{ return \"{version}\" }}\n")
    base = f"{escape(path)}/@v/"
    info = json.dumps({"Version": version, "Time": "2024-01-02T03:04:05Z"}).encode()
    return {base + "list": f"{version}\n".encode(), base + f"{version}.info": info, base + f"{version}.mod": mod,
            base + f"{version}.zip": buf.getvalue()}
