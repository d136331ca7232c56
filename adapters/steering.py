"""Remote steering, shell side: send a command, and poll for it in the run loop.

``send_steering`` (used by ``uok steer``) puts a ``MessageSent`` on the bus
to ``kernel:<run>`` with topic ``steer`` and payload
``{"command": ..., "argument": ...}``.

``SteeringPoller.poll`` runs in the runner's main loop between steps (a
turn boundary): each unread steering message becomes a ``SteeringReceived``
observation, stepped through the kernel (which decides ``SteeringApplied``,
``uok.domain.kernel.rules.steering``). The message's ``MessageRead`` is appended in the same
transaction, just before the observation: a message is applied exactly
when it is marked read, never one without the other, and the run's
``KernelExited`` (which a cancel can trigger) stays its last event. A
message someone else marked read first (``uok bus read kernel:RUN …``)
counts as consumed: the append fails on the read's pinned stream version
and the message is skipped. Applied message ids are also folded by the
kernel, which answers a duplicate delivery with an ``ignored`` outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.domain.events import COMMANDS, STEER_TOPIC, MessageRead, SteeringReceived, kernel_inbox, parse_payload
from uok.domain.log.errors import IntegrityError

__all__ = ["COMMANDS", "SteeringPoller", "send_steering"]


def send_steering(
    bus: MessageBus, run_id: str, command: str, argument: str = "", *, sender: str = "operator", unit: str = ""
) -> str:
    """``unit``: for a note, the unit it is for (its next attempt's feedback
    file holds it, uok.adapters.feedback); empty: the whole run."""
    if command not in COMMANDS:
        raise ValueError(f"unknown steering command {command!r} (expected one of {', '.join(COMMANDS)})")
    payload = {"command": command, "argument": argument, **({"unit": unit} if unit else {})}
    return bus.send(sender, kernel_inbox(run_id), STEER_TOPIC, payload)


class SteeringPoller:
    def __init__(
        self,
        log: EventLog,
        kernel: Callable[[], Any],
        *,
        run_id: str,
        step: Callable[..., None],
        clock: Callable[[], datetime],
    ):
        """``kernel`` returns the runner's current kernel (it may be rebuilt after a failed append);
        ``step(obs, prior=[...])`` is the runner's ``_step``."""
        self.kernel, self.run_id, self.step, self.clock = kernel, run_id, step, clock
        self.bus = MessageBus(log, clock=clock, run_id=run_id)
        self.inbox = kernel_inbox(run_id)
        self._quiet: tuple[int, int] | None = None  # the bus's mark when a poll last found nothing unread

    def poll(self) -> int:
        """Apply every unread steering message; returns how many were stepped."""
        stepped = 0
        mark = self.bus.mark()
        if mark is not None and mark == self._quiet:  # no message event since a poll found none unread
            return 0
        unread = self.bus.inbox(self.inbox, topic=STEER_TOPIC)
        if not unread:
            self._quiet = mark
        for msg in unread:
            kernel = self.kernel()
            if kernel.exited:
                break
            if kernel.steering_applied(msg.id):
                self.bus.mark_read(self.inbox, msg.id)
                continue
            command, argument = parse_payload(msg.payload)
            at = self.clock()
            read = MessageRead(run_id=self.run_id, at=at, message_id=msg.id, reader=self.inbox)
            try:
                self.step(
                    SteeringReceived(run_id=self.run_id, at=at, message_id=msg.id, command=command, argument=argument),
                    prior=[read],
                )
            except IntegrityError:
                continue  # marked read by someone else first: consumed, not ours to apply
            stepped += 1
        return stepped
