"""Pure cache policy: decisions from facts, no I/O and no mitmproxy types, tested table-driven."""
