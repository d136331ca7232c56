"""Runs and kernel parity (behaviour §7) as a read model.

Every kernel entry (``KernelEntered``) must be matched by exactly one exit:
a ``KernelExited`` written by the run itself, or a ``RunRecovered`` written
by a later kernel that found the run's process dead. This projection pairs
them per run; :mod:`uok.replay.parity` turns the pairs, plus a live pid probe
taken by the CLI, into the parity report. One part per run.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from uok.domain import events as ev
from uok.projections.base import PartitionedProjection

DEFAULT_PATH = "uok-kernel"


class RunView(msgspec.Struct, kw_only=True, gc=False):
    run_id: str
    pid: int = 0
    host: str = ""
    plan_path: str = ""
    plan_id: str = ""
    path: str = DEFAULT_PATH  # parity path label (behaviour §1)
    work_mode: str = "auto"  # the run's modes now: KernelEntered's, then each ModeChanged's
    model_mode: str = "default"
    mode_changes: int = 0  # ModeChanged decisions (uok steer RUN mode ...)
    workers: int = 0
    status: str = "open"  # open | ok | failed | error | terminated | recovered
    error: str = ""
    entered_at: datetime | None = None
    entered_position: int = 0
    exited_at: datetime | None = None
    exit_position: int = 0
    exits: int = 0  # exit records seen; parity wants exactly one per entry
    units_completed: int = 0
    units_failed: int = 0
    recovered_by: str = ""
    detached: bool = False  # a fork cut the run off from its process


def exit_status(e: ev.KernelExited) -> str:
    """The run's outcome: ``failed`` when units did not complete, also for
    runs recorded before the kernel decided ``failed`` itself (they said ``ok``)."""
    return "failed" if e.status == "ok" and e.units_failed else e.status


class RunsProjection(PartitionedProjection):
    name: ClassVar[str] = "runs"
    version: ClassVar[int] = 3  # 2: ``failed`` for runs whose units did not all complete; 3: ModeChanged
    part_type: ClassVar[type] = RunView
    types: ClassVar[frozenset[str]] = frozenset(
        {"KernelEntered", "PlanCompiled", "KernelExited", "RunRecovered", "RunForked", "ModeChanged"}
    )
    delta_density: ClassVar[int] = 10  # a delta every 100 events by default (base.py)

    def key(self, e):
        if type(e) is ev.RunRecovered:
            return e.recovered_run
        if type(e).__name__ == "RunForked":
            return e.open_runs
        return e.run_id

    def new_part(self, key: str) -> RunView:
        return RunView(run_id=key)

    def apply_part(self, r: RunView, position: int, e) -> RunView:
        t = type(e)
        if t is ev.KernelEntered:
            r.pid, r.host, r.plan_path, r.workers = e.pid, e.host, e.plan_path, e.workers
            r.path = str(e.flags.get("path", DEFAULT_PATH))
            r.work_mode, r.model_mode = e.work_mode, e.model_mode
            r.entered_at, r.entered_position = e.at, position
        elif t is ev.PlanCompiled:
            r.plan_id = e.plan_id
        elif t is ev.KernelExited:
            r.exits += 1
            r.status, r.error, r.exited_at, r.exit_position = exit_status(e), e.error, e.at, position
            r.units_completed, r.units_failed = e.units_completed, e.units_failed
        elif t is ev.RunRecovered:
            r.exits += 1
            r.status, r.exited_at, r.exit_position, r.recovered_by = "recovered", e.at, position, e.run_id
            r.error = f"recovered by {e.run_id}: pid {e.pid} dead" + (
                f", stale units {', '.join(e.stale_units)}" if e.stale_units else ""
            )
        elif t is ev.ModeChanged:
            r.work_mode, r.model_mode = e.work_mode, e.model_mode
            r.mode_changes += 1
        else:  # RunForked: the fork has no process behind this open run
            r.detached = True
        return r
