"""Remote steering, shell side: send a command, and poll for it in the run loop.

``send_steering`` (used by ``uok steer``) puts a ``MessageSent`` on the bus
to ``kernel:<run>`` with topic ``steer`` and payload
``{"command": ..., "argument": ...}``.

``SteeringPoller.poll`` runs in the runner's main loop between steps (a
turn boundary): each unread steering message becomes a ``SteeringReceived``
observation, stepped through the kernel (which decides ``SteeringApplied``,
``domain.steering``), and only *then* is the message marked read. If the
shell dies between the two, the message stays unread; a later poll finds
its id among the kernel's folded applied ids and only marks it read, so a
message is applied at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.bus import MessageBus
from adapters.eventlog import EventLog
from domain.bus_events import SteeringReceived
from domain.events import Event
from domain.steering import COMMANDS, STEER_TOPIC, kernel_inbox, parse_payload

__all__ = ["COMMANDS", "SteeringPoller", "send_steering"]


def send_steering(bus: MessageBus, run_id: str, command: str, argument: str = "", *, sender: str = "operator") -> str:
    if command not in COMMANDS:
        raise ValueError(f"unknown steering command {command!r} (expected one of {', '.join(COMMANDS)})")
    return bus.send(sender, kernel_inbox(run_id), STEER_TOPIC, {"command": command, "argument": argument})


class SteeringPoller:
    def __init__(self, log: EventLog, kernel: Callable[[], Any], *, run_id: str, step: Callable[[Event], None],
                 clock: Callable[[], datetime]):
        """``kernel`` returns the runner's current kernel (it may be rebuilt after a failed append)."""
        self.kernel, self.run_id, self.step, self.clock = kernel, run_id, step, clock
        self.bus = MessageBus(log, clock=clock, run_id=run_id)
        self.inbox = kernel_inbox(run_id)

    def poll(self) -> int:
        """Apply every unread steering message; returns how many were stepped."""
        stepped = 0
        for msg in self.bus.inbox(self.inbox, topic=STEER_TOPIC):
            kernel = self.kernel()
            if kernel.exited:
                break
            if msg.id not in kernel.steering.applied:
                command, argument = parse_payload(msg.payload)
                self.step(SteeringReceived(run_id=self.run_id, at=self.clock(), message_id=msg.id,
                                           command=command, argument=argument))
                stepped += 1
            self.bus.mark_read(self.inbox, msg.id)
        return stepped
