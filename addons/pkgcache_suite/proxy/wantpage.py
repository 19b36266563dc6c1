"""``/want`` on the report host: an offline client states which packages it wants, once.

The client needs only apt and curl (or a browser for the form): it sends the
package names, its `apt-get indextargets` (which says its sources,
architectures and languages) and optionally its dpkg status.  The statement is
answered only once it is on the datastore, so a stick pulled out right after
the answer carries it; `pkgcache fetch` then brings indexes and packages with
their dependencies in one trip.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging

from mitmproxy import http

from pkgcache_suite.wanted.wantedlist import WantedList
from pkgcache_suite.wanted.wantspec import (MAX_STATUS_BYTES, MAX_TARGETS_BYTES, WantError, build_request,
                                             build_rpm_request)
from pkgcache_suite.policy import oci
from pkgcache_suite.proxy import report
from pkgcache_suite.proxy.flowinfo import client_address

log = logging.getLogger("pkgcache")

MAX_BODY = MAX_STATUS_BYTES + MAX_TARGETS_BYTES + (1 << 20)
FIELDS = ("packages", "arch", "targets", "recommends", "format", "repos", "images")
MAX_IMAGES = 100
BLOBS = ("status", "rpmdb")  # the client's package database: dpkg's status, or rpm's rpmdb.sqlite


def one_liner(proxy: str) -> str:
    """What an apt client runs: nothing but apt and curl."""
    return (f"apt-get indextargets --no-release-info | curl -sS -x {proxy} http://{report.RESERVED_HOST}/want "
            "-F packages='hello' -F targets=@- -F status=@/var/lib/dpkg/status")


def rpm_one_liner(proxy: str) -> str:
    """What a dnf or zypper client runs, after a `dnf makecache` / `zypper refresh` through the proxy."""
    return (f"curl -sS -x {proxy} http://{report.RESERVED_HOST}/want -F format=rpm -F packages='hello' "
            "-F arch=$(uname -m) -F rpmdb=@/var/lib/rpm/rpmdb.sqlite")


def _text(flow: http.HTTPFlow, code: int, text: str) -> None:
    flow.response = http.Response.make(code, (text + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8",
                                                                      "Cache-Control": "no-store"})


def _form(flow: http.HTTPFlow) -> tuple[dict[str, str], bytes | None]:
    """The fields of a multipart (curl -F, the page's form) or urlencoded post; the status as bytes."""
    req = flow.request
    fields: dict[str, str] = {}
    status: bytes | None = None
    ctype = req.headers.get("content-type", "")
    if "multipart/form-data" in ctype:
        # the standard library's MIME parser: mitmproxy's form decoder drops the line breaks of file parts
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + (req.raw_content or b""))
        if not msg.is_multipart():
            raise WantError("a multipart body without parts")
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            value = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(value, bytes):
                continue
            if name in BLOBS:
                status = value
            elif name in FIELDS:
                fields[name] = value.decode("utf-8", "replace")
    else:
        for name, value in req.urlencoded_form.items(multi=True):
            if name in BLOBS:
                status = value.encode()
            elif name in FIELDS:
                fields[name] = value
    return fields, status


async def answer(flow: http.HTTPFlow, wanted: WantedList | None, proxy: str, healthy: bool = True) -> None:
    if flow.request.method == "GET":
        report.html_page(flow, report.render("want.html", healthy=healthy, one_liner=one_liner(proxy),
                                             rpm_one_liner=rpm_one_liner(proxy),
                                             requests=list(wanted.requests.values()) if wanted else [],
                                             datastore=str(wanted.datastore.root) if wanted and wanted.datastore
                                             else None, done=_request_id(flow.request.query.get("done", ""))))
        return
    if flow.request.method != "POST":
        flow.response = http.Response.make(405, b"pkgcache: /want takes GET (the form) or POST\n",
                                           {"Allow": "GET, POST", "Content-Type": "text/plain"})
        return
    if wanted is None:
        _text(flow, 503, "pkgcache: the wanted list is not ready yet; try again")
        return
    if len(flow.request.raw_content or b"") > MAX_BODY:
        _text(flow, 413, f"pkgcache: a statement is at most {MAX_BODY >> 20} MiB")
        return
    try:
        fields, status = _form(flow)
        client = client_address(flow)
        if fields.get("format", "deb").strip() == "oci":
            await _images(flow, wanted, fields.get("images", ""), client)
            return
        if fields.get("format", "deb").strip() == "rpm":
            req = build_rpm_request(fields, status, client, seen=wanted.use.rpm_repos_for(client))
        else:
            req = build_request(fields, status, client, seen=wanted.use.sources_for(client))
    except (WantError, ValueError) as e:
        log.warning("pkgcache: refused a wanted-packages statement from %s: %s", client_address(flow), e)
        _text(flow, 400, f"pkgcache: {e}")
        return
    new = wanted.add_request(req, status)
    await wanted.durable()
    where = (f"written to the datastore {wanted.datastore.root}: safe to remove" if wanted.safe_to_remove
             and wanted.datastore is not None else "kept locally: it goes on the next datastore attached")
    what = req.describe()
    log.info("pkgcache: %s wanted packages from %s: %s (request %s)", "recorded" if new else "already recorded",
             req.client, what, req.id)
    if "text/html" in flow.request.headers.get("accept", ""):
        flow.response = http.Response.make(303, b"", {"Location": f"/want?done={req.id}", "Cache-Control": "no-store"})
        return
    _text(flow, 200, f"pkgcache: recorded request {req.id}: {what}; {where}")


async def _images(flow: http.HTTPFlow, wanted: WantedList, text: str, client: str) -> None:
    """Container images stated by reference: each one's manifest goes on the wanted list, as a client's miss
    would put it there, and `pkgcache fetch` brings the rest of the image with it."""
    refs = text.split()
    if not refs or len(refs) > MAX_IMAGES:
        raise WantError(f"name 1 to {MAX_IMAGES} images (REGISTRY/NAME:TAG)")
    urls = [oci.reference_url(r) for r in refs]  # ValueError names the bad one
    for url in urls:
        wanted.record(url, client, {"accept": oci.manifest_accept()}, "volatile")
    await wanted.durable()
    log.info("pkgcache: wanted images from %s: %s", client, " ".join(refs))
    _text(flow, 200, f"pkgcache: recorded {len(urls)} image(s) in the wanted list: {' '.join(urls)}")


def _request_id(value: str) -> str:
    """The banner names a request id only: nothing else from the query string reaches the page."""
    return value if len(value) == 16 and all(c in "0123456789abcdef" for c in value) else ""
