"""The `pkgcache` command."""

from pkgcache_suite.cli.main import main

__all__ = ["main"]
