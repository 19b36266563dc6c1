"""The names both sides of the tier share: headers HAProxy, nginx and the workers set or read, nginx's
locations, and the files of the tier's run folder.  A worker reads them from here; the generator of the
front's configuration (tier/config.py) writes them into HAProxy's and nginx's files.
"""

from __future__ import annotations

AUTHORITY = "X-Pkgcache-Authority"  # host[:port] of the requested URL, set by HAProxy from the request line
DIRECT = "X-Pkgcache-Direct"  # set by HAProxy on a request addressed to the proxy itself (a plain browser)
VIA = "X-Pkgcache-Via"  # the address the client connected to, for the setup page
ENGINE = "X-Pkgcache-Engine"  # set by nginx alone: the published path of the request, so a worker may redirect
FETCH_PREFIX = "/.pkgcache-fetch/"  # nginx's internal location fetching and storing a miss: /TOKEN/ADDRESS/HOST
HIT_LOCATION = "@pkgcache_hit"  # nginx's named location serving a published file
FETCH_AGAIN = "@pkgcache_fetch_again"  # ... asking upstream once more after a connect that failed
LANDING = "landing"  # the folder, in the tier's run folder, where nginx stores fetched files (one per token)
FETCH_LOG = "front-fetch.log"  # nginx's line per fetched miss, read by the worker that asked for it
NGINX_PID = "nginx.pid"
# what nginx acts on in a response it proxies; a worker sends only the redirect, and only its own
ACCEL = ("X-Accel-Redirect", "X-Accel-Expires", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset")
REFUSED = "pkgcache: refused a fetch no worker asked for"  # nginx's line for a redirect without its grant
