"""The read models over one log: the projection store kept in the log's
own file, and a runner over every registered projection
(:data:`uok.projections.registry.ALL`).

Built by :func:`uok.bootstrap.read_models`; used by the CLI's reading
commands, doctor, the metrics server and the public API alike.
"""

from __future__ import annotations

import os
from typing import Any

from uok.errors import InputError


class ReadModels:
    def __init__(
        self, store: Any, *, batch: int | None = None, snapshot_every: int | None = None, readonly: bool | None = None
    ):
        """``readonly`` (default: as the store was opened): fold in memory and
        never write the read models back, so a reading command leaves the
        log's file as it found it."""
        from uok.adapters.log_store import projection_store
        from uok.projections import registry
        from uok.projections.runner import DEFAULT_BATCH, ProjectionRunner, snapshot_interval

        self.store = store
        self.pstore = projection_store(store)
        self.runner = ProjectionRunner(
            self.pstore,
            self.pstore,
            registry.ALL,
            batch=batch or DEFAULT_BATCH,
            snapshot_every=snapshot_every or snapshot_interval(os.environ),
            readonly=bool(getattr(store, "readonly", False)) if readonly is None else readonly,
        )

    def head(self) -> int:
        return self.store.head()[0]

    def catch_up(self) -> None:
        """Bring every read model up to the head (their positions are tracked,
        so this folds only what was appended since the last command)."""
        self.runner.catch_up()

    def check_position(self, position: int, what: str = "position") -> int:
        head = self.head()
        if position < 0 or position > head:
            raise InputError(f"{what} {position} is outside the log (head is {head})")
        return position

    def status(self, *, summary: bool = False) -> dict[str, Any]:
        """Runs and units by state at the head (``uok status``), from the
        stored ``runs``/``units`` read models folded forward to the head:
        only what was appended since they were last caught up is read, and
        nothing is written (status must not touch the file, least of all a
        damaged one). ``summary``: the runs and plans of
        :func:`uok.replay.timetravel.summary_scope` only (and ``summary``:
        counts of all), so only those plans' unit records are decoded."""
        from uok.replay.timetravel import system_view

        head = self.head()
        view = system_view(self.runner.state_at(head, ["runs", "units"]), head, summary=summary)
        runs = [
            {
                "run_id": rid,
                "plan_id": r["plan_id"],
                "status": r["status"],
                "pid": r["pid"],
                "entered_at": r["entered_at"],
                "exited_at": r["exited_at"],
                "work_mode": r["work_mode"],
                "model_mode": r["model_mode"],
                "mode_changes": r["mode_changes"],
            }
            for rid, r in view["runs"].items()
        ]
        runs.sort(
            key=lambda r: (str(r["entered_at"] or ""), r["run_id"])
        )  # oldest first, whatever the fold's key order
        out = {"position": head, "runs": runs, "plans": view["plans"]}
        if summary:
            out["summary"] = view["summary"]
        return out


def projection_names(names: list[str] | None) -> list[str] | None:
    """``names`` checked against the registered projections (None: all)."""
    from uok.projections import registry

    if not names:
        return None
    known = [p.name for p in registry.ALL]
    for n in names:
        if n not in known:
            raise InputError(f"no projection named {n!r} (known: {', '.join(known)})")
    return names


class MetricsSource:
    """Metrics snapshots (:class:`uok.projections.metrics.MetricsSnapshot`)
    from the read models, never computed from an altered log.

    The hash chain of every event the read models are about to fold is
    checked first, from the lowest tracked position; a long-lived source
    (``uok serve``: ``remember=True``) starts each check where the previous
    scrape's ended, so a scrape costs in proportion to what was appended
    since. A broken chain raises ChainBroken (exit 3).
    """

    def __init__(self, rm: ReadModels, *, remember: bool = False):
        from uok.projections import registry
        from uok.projections.metrics import SOURCES

        known = {p.name for p in registry.ALL}
        self.rm, self.names = rm, [n for n in SOURCES if n in known]
        self.remember, self.verified = remember, 0

    def at(self, position: int) -> Any:
        """The metrics as of ``position`` (folded up to it)."""
        from uok.projections.metrics import snapshot

        self.rm.check_position(position, "--at")
        self.rm.store.verify_chain()
        return snapshot(self.rm.runner.state_at(position, self.names), position)

    def __call__(self) -> Any:
        """The metrics at the head, the read models caught up."""
        from uok.projections.metrics import snapshot

        rm = self.rm
        status = [st for st in rm.runner.status() if st.name in self.names]
        start = min((st.position for st in status), default=0)
        if self.remember:
            start = max(start, min(self.verified, rm.head()))
        rm.store.verify_chain(after=start)
        lag = {st.name: st.lag for st in status}
        head = rm.head()
        snap = snapshot(rm.runner.states(self.names), head, lag)
        if self.remember:
            self.verified = head
        return snap
