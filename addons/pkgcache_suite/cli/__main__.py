"""python -m pkgcache_suite.cli: the pkgcache command."""

from pkgcache_suite.cli.main import main

main()
