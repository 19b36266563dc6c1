"""Moving bytes: the tee of a miss, lead and follow, relays, continuation, the loopback file server, upstream timeouts."""
