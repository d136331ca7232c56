"""Dispatch (behaviour §12): which units start now, which can never start, when a
run is done.

Rules, all deterministic and taken from the folded log:

* a unit is *ready* when it is queued, not in flight, and every dependency
  in the plan has completed; ready units are taken in the graph's
  topological order (ties broken by plain string order);
* a batch never holds two writers of one file, nor a writer of a file that
  a unit in flight writes (``select_reactive_dispatch_batch``), and never
  exceeds the free workers;
* a queued unit whose dependency ended final but not completed is
  ``blocked``;
* a unit dispatched ``max_dispatches`` times is ``runaway-recovered``
  instead of dispatched again, for every unit type (behaviour §18);
* more than ``max_iterations`` turns in one run (default 500) stops the run
  (behaviour §1: "possible runaway");
* nothing in flight and nothing ready while units remain is a deadlock:
  they are blocked and the run exits ``error``.

``DispatchRules`` is mixed into :class:`uok.domain.kernel.Kernel`; it uses the
kernel's state and its ``_transition``/``emit``/``_stop``/``_exit``.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel import coordination, gating
from uok.domain.plan import UnitNode
from uok.domain.plan.graph import select_reactive_dispatch_batch
from uok.domain.policies.lifecycle import UnitRecord

MAX_LOOP_ITERATIONS = 500


class DispatchRules:
    def _advance(self) -> None:
        """Dispatch what can run, settle what can never run, exit when done."""
        if self.exited or self.graph is None:
            return
        while True:
            self._block_unreachable()
            if not self._dispatch():
                break
        if not self.in_flight:
            remaining = [n.id for n in self.graph.nodes if not self.is_final(self.unit(n.id))]
            if not remaining:
                self._exit("ok")
            elif not self._ready():
                for unit_id in remaining:
                    self._transition(unit_id, "blocked", reason="deadlock: no ready unit and nothing in flight")
                    self._transition(unit_id, "notified")
                self._exit("error", "Execution graph deadlock detected: no ready nodes and graph not complete")

    def _block_unreachable(self) -> None:
        changed = True
        while changed:
            changed = False
            for unit_id in self.graph.order:  # type: ignore[union-attr]
                rec = self.unit(unit_id)
                if rec is None or rec.state != "queued":
                    continue
                for dep in self.nodes[unit_id].depends_on:
                    drec = self.unit(dep)
                    if dep in self.nodes and self.is_final(drec) and drec.outcome != "completed":
                        self._transition(unit_id, "blocked", reason=f"dependency {dep} ended {drec.outcome}")
                        self._transition(unit_id, "notified")
                        changed = True
                        break

    def _ready(self) -> list[str]:
        ready = []
        busy = self.in_flight_units()
        for unit_id in self.graph.order:  # type: ignore[union-attr]
            rec = self.unit(unit_id)
            if rec is None or rec.state != "queued" or unit_id in busy:
                continue
            deps = self.nodes[unit_id].depends_on
            if all(self.unit(d) is not None and self.unit(d).outcome == "completed" for d in deps if d in self.nodes):
                ready.append(unit_id)
        return ready

    def _dispatch(self) -> bool:
        """Dispatch one batch; True if anything changed (so try again)."""
        if self.flags.get("paused") or coordination.dispatch_held(self):
            return False
        free = self.workers - len(self.in_flight)
        ready = self._ready()
        if free <= 0 or not ready:
            return False
        in_flight_outputs = {w for u in self.in_flight_units() for w in self.nodes[u].writes}
        selected, _conflicts = select_reactive_dispatch_batch(
            self.graph.nodes,
            ready,
            free,
            in_flight_outputs,  # type: ignore[union-attr]
        )
        changed = False
        for unit_id in selected:
            node, rec = self.nodes[unit_id], self.unit(unit_id)
            assert rec is not None
            if rec.dispatches >= node.max_dispatches:
                self._transition(
                    unit_id,
                    "runaway-recovered",
                    reason=f"dispatched {rec.dispatches} times, cap is {node.max_dispatches}",
                )
                self._transition(unit_id, "notified")
                changed = True
                continue
            if self.iteration >= int(self.flags.get("max_iterations", MAX_LOOP_ITERATIONS)):
                self._stop(
                    status="error", error=f"Safety: loop exceeded {self.iteration} iterations — possible runaway"
                )
                return False
            self._start_turn(node, rec)
            changed = True
        return changed

    def _start_turn(self, node: UnitNode, rec: UnitRecord) -> None:
        iteration = self.iteration + 1
        turn_id = f"{self.run_id}:{iteration}"
        self._transition(node.id, "claimed", dispatches=rec.dispatches + 1, turn_id=turn_id)
        self.emit(
            ev.TurnStarted(
                run_id=self.run_id,
                at=self._at,
                turn_id=turn_id,
                iteration=iteration,
                unit_id=node.id,
                unit_type=node.unit_type,
                attempt=rec.attempt,
            )
        )
        self._transition(node.id, "running", turn_id=turn_id)
        self.emit(
            ev.PhaseResult(
                run_id=self.run_id,
                at=self._at,
                turn_id=turn_id,
                phase="dispatch",
                action="dispatched",
                data={"attempt": rec.attempt},
            )
        )
        if node.command is None:
            self.emit(ev.PhaseResult(run_id=self.run_id, at=self._at, turn_id=turn_id, phase="unit", action="noop"))
            gating.start_gates(self, self.in_flight[turn_id])
