"""Events of the message bus, steering, sub-agents, chaos and gitops
(behaviour §6, §8, §15), and the small vocabulary their messages use: the
steering commands, topic and inbox; the chaos faults and boundaries.

Messages live in their own stream ``msg:<id>`` with the send at version 1,
so a second ``send_once`` with the same key collides on (stream, version)
and writes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from uok.domain.events.base import Event
from uok.domain.plan import UnitNode

# --------------------------------------------------------------------------- messages


class MessageSent(Event, frozen=True, kw_only=True):
    """A message on the bus. One a task sends carries the task's run
    (``run_id``) and turn (``turn_id``); one sent from outside a run, neither."""

    OBSERVED: ClassVar[bool] = True

    message_id: str
    sender: str
    recipient: str
    topic: str = ""
    payload: dict[str, Any] = {}
    dedupe_key: str = ""
    turn_id: str = ""

    def stream(self) -> str:
        return f"msg:{self.message_id}"

    def pinned_version(self) -> int | None:
        return 1  # a second send of one id (send_once) fails on UNIQUE(stream, version)


class MessageRead(Event, frozen=True, kw_only=True):
    OBSERVED: ClassVar[bool] = True

    message_id: str
    reader: str

    def stream(self) -> str:
        return f"msg:{self.message_id}"

    def pinned_version(self) -> int | None:
        return 2  # read at most once: a racing second mark_read writes nothing


# --------------------------------------------------------------------------- steering

COMMANDS = ("pause", "resume", "cancel", "note", "mode", "stop", "intent")
STEER_TOPIC = "steer"


def kernel_inbox(run_id: str) -> str:
    """The bus recipient a run's shell polls for steering messages."""
    return f"kernel:{run_id}"


def parse_payload(payload: dict[str, Any]) -> tuple[str, str]:
    """(command, argument) of a steering message's payload; tolerant of junk,
    which the kernel then answers with an ``ignored`` outcome."""
    command = payload.get("command", "")
    argument = payload.get("argument", "")
    return (
        command if isinstance(command, str) else repr(command),
        argument if isinstance(argument, str) else repr(argument),
    )


class SteeringReceived(Event, frozen=True, kw_only=True):
    """The kernel picked up a steering message at a turn boundary."""

    OBSERVED: ClassVar[bool] = True

    message_id: str
    command: str  # pause | resume | cancel | note | mode | intent
    argument: str = ""


class SteeringApplied(Event, frozen=True, kw_only=True):
    message_id: str
    command: str
    argument: str = ""
    outcome: str = ""  # what the kernel did, or why it did nothing
    plan_id: str = ""
    paused: bool | None = None  # the plan's pause flag after this, None = unchanged


# --------------------------------------------------------------------------- sub-agents


class SubagentSpawned(Event, frozen=True, kw_only=True):
    parent_unit: str
    child_unit: str
    work_mode: str
    model_mode: str
    permission_profile: str
    overrides: dict[str, str] = {}
    plan_id: str = ""
    turn_id: str = ""
    lineage: tuple[str, ...] = ()  # ancestors, root first, ending with parent_unit
    node: UnitNode | None = None  # the child unit as added to the graph (re-added on restart)


class SidecarQueued(Event, frozen=True, kw_only=True):
    """Sidecar work a unit queued (behaviour §12, the seed's sidecar queue):
    item ``index`` of its plan's queue, run as the unit ``node`` (id
    ``sidecar-<0000>:<kind>:<unit type>:<unit id>``, kind mapped, chained
    after the previous item), between regular units without holding them."""

    plan_id: str
    index: int
    kind: str
    unit_type: str
    unit_id: str
    queued_by: str
    turn_id: str = ""
    node: UnitNode


# --------------------------------------------------------------------------- chaos

Fault = Literal["latency", "partial-failure", "disk-stress", "memory-stress"]
FAULTS: tuple[Fault, ...] = get_args(Fault)
BOUNDARIES = ("dispatch", "gate", "finalize")


class ChaosInjected(Event, frozen=True, kw_only=True):
    """A fault the chaos monkey injected, recorded BEFORE it takes effect."""

    OBSERVED: ClassVar[bool] = True

    seed: int
    sequence: int
    fault: str  # latency | partial-failure | disk-stress | memory-stress
    boundary: str  # the phase boundary it struck at
    turn_id: str = ""
    unit_id: str = ""
    gate_id: str = ""
    magnitude: float = 0.0  # latency: ms; disk/memory stress: MiB; partial failure: 0
    attempt: int = 0  # the unit's attempt, or the gate's attempt at the gate boundary (uok.domain.kernel.rules.chaos)


# --------------------------------------------------------------------------- gitops


class GitTransactionRecorded(Event, frozen=True, kw_only=True):
    OBSERVED: ClassVar[bool] = True

    turn_id: str
    stage: str  # turn-start | stage | checkpoint | publish | record
    action: str = "status-only"
    status: str = "ok"  # ok | failed | timeout | skipped
    error: str = ""
    duration_ms: int = 0
    detail: dict[str, Any] = {}
