"""Offline mode's one decision: whether upstream can be reached (offline/reachability.py)."""
