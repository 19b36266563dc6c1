"""What the tests are built on: the origin, repository builders, the proxy, raw HTTP."""
