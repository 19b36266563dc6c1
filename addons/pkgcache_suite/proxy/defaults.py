"""Where one addon's setting implies another option's value: every such default in one place.

The other addons only parse their own options.  This addon runs after them and
sets what their settings imply, so a reader finds every cross-option rule here:

- upstream HTTPS is checked against the machine's CAs (SSL_CERT_FILE, the system
  store) as admins expect, not mitmproxy's own bundle, unless a file is named;
- ``Offline`` in a config file means ``pkgcache_offline=on``;
- a mirror-style listener or HTTPS interception needs ``connection_strategy=lazy``:
  mirror-style requests name their real host in the path (the reverse target is
  never contacted), and an intercepted CONNECT must be answerable from the cache
  when upstream is gone, which the eager strategy would turn into a 502 first;
- under mitmweb, each flow's comment (what the cache did) is a column, once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mitmproxy import ctx

from pkgcache_suite.proxy.router import Router
from pkgcache_suite.trust import system_ca_file

log = logging.getLogger("pkgcache")


def implied(opts: Mapping[str, Any], updated: set[str], conf_offline: bool, intercepting: bool,
            system_ca: str | None, columns_added: bool) -> dict[str, Any]:
    """The option updates the current options imply; pure (the caller applies them)."""
    out: dict[str, Any] = {}
    if "ssl_verify_upstream_trusted_ca" in updated and "ssl_verify_upstream_trusted_ca" in opts \
            and not opts["ssl_verify_upstream_trusted_ca"] and system_ca:
        out["ssl_verify_upstream_trusted_ca"] = system_ca
    if "pkgcache_conf" in updated and conf_offline:
        out["pkgcache_offline"] = "on"
    if updated & {"mode", "connection_strategy", "pkgcache_intercept_hosts"} \
            and opts.get("connection_strategy") == "eager" \
            and (any(str(m).startswith("reverse") for m in opts.get("mode", ())) or intercepting):
        out["connection_strategy"] = "lazy"
    columns = opts.get("web_columns")
    if "web_columns" in updated and columns is not None and "comment" not in columns and not columns_added:
        out["web_columns"] = [*columns, "comment"]
    return out


_READ = ("ssl_verify_upstream_trusted_ca", "connection_strategy", "mode", "web_columns")


class ImpliedOptions:
    """Sets the options the suite's settings imply (see the module's docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._columns_added = False

    def configure(self, updated: set[str]) -> None:
        opts = {name: getattr(ctx.options, name) for name in _READ if hasattr(ctx.options, name)}
        s = self.router.s
        ca = system_ca_file() if "ssl_verify_upstream_trusted_ca" in updated else None
        changes = implied(opts, updated, bool(s.conf.offline), bool(s.intercept), ca, self._columns_added)
        if "connection_strategy" in changes:
            why = "a reverse (mirror-style) listener" if any(str(m).startswith("reverse") for m in opts.get("mode", ())) \
                else "HTTPS interception"
            log.info("pkgcache: %s: setting connection_strategy=lazy", why)
        if "web_columns" in changes:
            self._columns_added = True
        if changes:
            ctx.options.update(**changes)
