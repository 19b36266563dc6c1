"""Index-driven maintenance: expire, verify, import, precache, releases."""
