"""The mitmproxy script ``pkgcache serve`` hands to mitmdump: it assembles the installed suite.

It ships inside the package, so a plain ``pip install`` (not only an editable
one) can start the proxy; ``addons/pkgcache.py`` in a checkout does the same.
"""

from pkgcache_suite.proxy.suite import build_addons

addons = build_addons(fail_fast=True)
