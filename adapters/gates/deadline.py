"""Running a gate's work with a deadline, in a daemon thread.

A gate (or the secret scanner inside one) may hang; the runner must not.
The work runs in a daemon thread; after the deadline the caller stops
waiting and judges the attempt. The thread itself cannot be killed from
Python: gates that run processes (verification) kill their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple


class Finished(NamedTuple):
    """``finished`` False: the deadline passed first. Otherwise exactly one of
    ``value`` / ``error`` says how the work ended."""

    finished: bool
    value: Any = None
    error: BaseException | None = None


def call_with_deadline(work: Callable[[], Any], seconds: float, *, name: str) -> Finished:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # reported to the caller, never raised in the thread  # noqa: BLE001
            box["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return Finished(False)
    return Finished(True, box.get("value"), box.get("error"))
