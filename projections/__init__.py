"""Read models: pure folds of the log into state, tracked, snapshot and rebuildable (docs/time-travel.md)."""
