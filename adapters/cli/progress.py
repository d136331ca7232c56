"""What ``uok run`` says about a run's progress without drawing it: the
line for a unit queued again, and the ``--quiet`` observer that prints only
those lines. Nothing here imports rich: a quiet or ``--json`` run does not
pay for it (the live view is :mod:`uok.adapters.cli.rich_progress`).
"""

from __future__ import annotations

import sys

from uok.domain import events as ev


def requeue_line(e: ev.UnitRequeued) -> str:
    """One line saying a unit runs again, and why."""
    why = e.reason
    if e.cause == "amended":
        why += f" (fingerprint {e.old_fingerprint} -> {e.new_fingerprint})"
    elif e.cause == "retry" and e.by:
        why += f" (by {e.by})"
    return f"{e.unit_id} ({e.was}) queued again, {e.cause}: {why}"


class RequeueLines:
    """With ``--quiet``: only the re-queues, on stderr (a run re-doing work says so)."""

    def on_events(self, events: list[ev.Event]) -> None:
        for e in events:
            if isinstance(e, ev.UnitRequeued):
                print(f"uok: {requeue_line(e)}", file=sys.stderr, flush=True)
