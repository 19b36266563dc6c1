"""mitmproxy entry script: ``mitmdump -s addons/pkgcache.py``.

It only assembles the suite; the code lives in the ``pkgcache_suite`` package
beside it (installed by ``pip install -e .``), because mitmproxy puts this
directory on sys.path only while the script loads.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pkgcache_suite.proxy.suite import build_addons  # noqa: E402

addons = build_addons(fail_fast=True)
