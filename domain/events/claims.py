"""Events of workers on several hosts claiming a run's units (issue 16).

A run started with ``uok run --claims`` does not execute its units' commands
itself: each dispatched turn waits in the log until a ``uok worker`` process
(on this host or another sharing the log) claims it, runs it and reports.

Every claim event of a turn lives in the turn's own stream, ``claim:<turn
id>``, and pins its version there: the version *is* the claim's fencing
epoch. Each writer appends at the version after the last one it folded and
checks (``expect``) that the stream is still there, so:

* exactly one worker claims a turn (two claims both pin version 1:
  UNIQUE(stream, version) lets one through);
* a heartbeat (:class:`ClaimRenewed`) and the coordinator's
  :class:`ClaimExpired` race for the same version: one wins; a worker whose
  heartbeat lost knows its lease is gone;
* a worker's :class:`WorkerReported` is accepted only while its epoch is the
  stream's last: after a :class:`ClaimExpired` it is refused, nothing written.

All of them are observations the kernel decides nothing about and folds
nothing of: workers append them whenever they like, so the kernel's state
must not depend on when the coordinator happens to read them. The
coordinator *admits* a report by stepping an ``ExecutionFinished`` built
from it (:func:`admitted`), and a lost lease by stepping a failed
``ExecutionFinished`` in the transaction of its ``ClaimExpired``: those are
the observations that drive the kernel, in the coordinator's own order, so
a run with workers replays like any other.

The rules (who may claim what, when a lease has expired) are the pure fold
in :mod:`uok.domain.policies.claims`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from uok.domain.events.agents import AgentOutcome
from uok.domain.events.base import Event
from uok.domain.events.runs import ExecutionFinished, ModelUsage, OutputLog, SpawnRequest, StopRecord


def claim_stream(turn_id: str) -> str:
    """The stream whose versions are a turn's claim epochs."""
    return f"claim:{turn_id}"


def worker_stream(worker: str) -> str:
    """A worker's own stream: it joined, it left."""
    return f"worker:{worker}"


class WorkerJoined(Event, frozen=True, kw_only=True):
    """A ``uok worker`` began serving a run (it claims nothing yet)."""

    OBSERVED: ClassVar[bool] = True

    worker: str
    host: str
    pid: int
    ttl_seconds: float

    def stream(self) -> str:
        return worker_stream(self.worker)


class WorkerLeft(Event, frozen=True, kw_only=True):
    """A worker stopped serving a run: the run ended, or it was stopped."""

    OBSERVED: ClassVar[bool] = True

    worker: str
    host: str
    pid: int
    reason: str = ""

    def stream(self) -> str:
        return worker_stream(self.worker)


class UnitClaimed(Event, frozen=True, kw_only=True):
    """A worker took a dispatched turn: its lease runs ``ttl_seconds`` from
    when the coordinator saw this (or the last renewal). Always epoch 1: a
    turn is claimed once; a turn whose lease expired is failed and its unit
    retried as a new turn."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    epoch: int  # this event's version in the turn's claim stream
    unit_id: str
    attempt: int
    worker: str
    host: str
    pid: int
    ttl_seconds: float

    def stream(self) -> str:
        return claim_stream(self.turn_id)

    def pinned_version(self) -> int | None:
        return self.epoch


class ClaimRenewed(Event, frozen=True, kw_only=True):
    """A worker's heartbeat: its lease on the turn runs ``ttl_seconds`` again."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    epoch: int
    worker: str
    host: str
    pid: int
    ttl_seconds: float

    def stream(self) -> str:
        return claim_stream(self.turn_id)

    def pinned_version(self) -> int | None:
        return self.epoch


class ClaimExpired(Event, frozen=True, kw_only=True):
    """The coordinator saw no heartbeat for the lease's TTL (by its own
    clock): the claim is void from this epoch on. Recorded in the
    transaction of the turn's failed ``ExecutionFinished``."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    epoch: int
    unit_id: str
    worker: str
    host: str
    pid: int
    reason: str = ""

    def stream(self) -> str:
        return claim_stream(self.turn_id)

    def pinned_version(self) -> int | None:
        return self.epoch


class WorkerReported(Event, frozen=True, kw_only=True):
    """A worker's outcome of the turn it claimed: the measured fields of an
    ``ExecutionFinished`` (the coordinator admits it as one)."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    epoch: int
    unit_id: str
    worker: str
    host: str
    pid: int
    exit_code: int | None
    duration_ms: int
    timed_out: bool = False
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    usage: tuple[ModelUsage, ...] = ()
    spawns: tuple[SpawnRequest, ...] = ()
    stdout_log: OutputLog | None = None
    stderr_log: OutputLog | None = None
    stop: StopRecord | None = None
    agent: AgentOutcome | None = None
    products: dict[str, str] = {}
    cannot_start: bool = False
    model: str = ""

    def stream(self) -> str:
        return claim_stream(self.turn_id)

    def pinned_version(self) -> int | None:
        return self.epoch


_MEASURED = tuple(
    f for f in ExecutionFinished.__struct_fields__ if f not in ("run_id", "at", "turn_id", "unit_id")
)  # fmt: skip


def measured(outcome: msgspec.Struct) -> dict[str, Any]:
    """The measured fields of an execution (an ``ExecutionOutcome``, an
    ``ExecutionFinished`` or a ``WorkerReported``), by name."""
    return {f: getattr(outcome, f) for f in _MEASURED if hasattr(outcome, f)}


def admitted(report: WorkerReported, at: datetime) -> ExecutionFinished:
    """The ``ExecutionFinished`` the coordinator steps for a worker's report."""
    return ExecutionFinished(
        run_id=report.run_id, at=at, turn_id=report.turn_id, unit_id=report.unit_id, **measured(report)
    )
