"""``python -m tests.reliability.barrier_start GO ARGS...``: import uok, wait
for the file GO to appear, then run ``uok ARGS...`` and exit with its code.

Imports (the slow part of a start) happen before the barrier, so every
process folds the log within milliseconds of the others: the window in
which simultaneous starts of one plan used to both believe they owned it
(tests/reliability/test_simultaneous_starts.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from uok.adapters import runner
from uok.adapters.cli.framework import main

WARM = runner  # the imports a run needs (the runner, the kernel), done before the barrier

if __name__ == "__main__":
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.002)
    sys.exit(main(sys.argv[2:]))
