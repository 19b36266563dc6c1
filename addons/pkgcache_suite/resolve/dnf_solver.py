"""Resolve an install with dnf's own solver (libdnf/libsolv); run by a Python that has the dnf module.

Not imported by pkgcache: `rpmresolve` runs this file with the system's Python
(dnf's bindings live there, not in pkgcache's virtual environment), passing a
JSON job on standard input and reading a JSON answer on standard output:

    in:  {"root": DIR, "cache": DIR, "arch": "x86_64", "repos": [DIR, ...], "packages": [...],
          "weak": true, "rpmdb": FILE or null}
    out: {"files": [{"repo": N, "location": "...", "size": N, "sha256": "..." or null}], "problems": {...}}

The root is an empty install root holding only the client's rpmdb, so what the
client has installed is not fetched again.
"""

import json
import os
import shutil
import sys


def main() -> int:
    job = json.load(sys.stdin)
    import dnf  # type: ignore[import-not-found]
    import dnf.exceptions  # type: ignore[import-not-found]
    import hawkey  # type: ignore[import-not-found]
    import rpm  # type: ignore[import-not-found]

    problems = {}
    if job.get("rpmdb"):
        dbpath = rpm.expandMacro("%{_dbpath}")
        where = os.path.join(job["root"], dbpath.lstrip("/"))
        os.makedirs(where, exist_ok=True)
        shutil.copyfile(job["rpmdb"], os.path.join(where, "rpmdb.sqlite"))
    base = dnf.Base()
    conf = base.conf
    conf.installroot = job["root"]
    conf.cachedir = job["cache"]
    conf.reposdir = []
    conf.arch = job["arch"]
    conf.gpgcheck = False
    conf.install_weak_deps = bool(job.get("weak", True))
    conf.substitutions["releasever"] = "pkgcache"
    for n, path in enumerate(job["repos"]):
        repo = base.repos.add_new_repo(f"r{n}", conf, baseurl=["file://" + path])
        repo.metadata_expire = 0
    try:
        base.fill_sack(load_system_repo=True, load_available_repos=True)
    except dnf.exceptions.Error as e:
        print(json.dumps({"files": [], "problems": {"*": f"dnf cannot read the fetched repositories: {e}"}}))
        return 0
    for name in job["packages"]:
        try:
            base.install(name)
        except dnf.exceptions.Error as e:
            problems[name] = str(e)
    files = []
    try:
        base.resolve()
    except dnf.exceptions.Error as e:
        problems["*"] = str(e)
    else:
        for pkg in base.transaction.install_set:
            kind, digest = pkg.chksum if pkg.chksum else (None, None)
            sha = digest.hex() if kind == hawkey.CHKSUM_SHA256 and isinstance(digest, bytes) else None
            files.append({"repo": int(pkg.reponame[1:]), "location": pkg.location, "size": pkg.downloadsize,
                          "sha256": sha})
    print(json.dumps({"files": files, "problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
