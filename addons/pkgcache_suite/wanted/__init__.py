"""The wanted list: what clients asked for that is not cached, and the requests they stated."""
