"""Replay, time travel and fork: the unchanged domain re-driven over a recorded log (docs/time-travel.md)."""
