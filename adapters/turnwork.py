"""Where a run's executions and gates run: a pool of worker threads, or the
run loop's own thread (issue 15).

The loop (:mod:`uok.adapters.runner`) hands every gate and every execution
here. They run in the pool, and what each ends with (an observation) goes
to the loop's results queue. One case runs on the loop's thread instead:
a command whose dispatch leaves it the only thing of the run in flight (a
chain's next step). The loop starts it itself (after the sync that makes its
dispatch durable, as before) and pumps its output for up to
:data:`INLINE_WINDOW`; a task done by then (a chain of short steps) is
recorded with no hand-off to a worker thread and back: two thread wake-ups
and their GIL hand-offs less per step (``true`` tasks: about 12 context
switches of the process per step before, about 7 after). A task still
running then is handed to the pool as it is, pumped there to its end: the
loop is back to its duties (signals, steering, breaker timers) within the
window. Whatever the task reports while it runs (progress, usage) is
queued as before; the observations, their content and their order are the
same on either thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from uok.adapters.artifacts import observe_products
from uok.adapters.secrets import redact
from uok.domain import events as ev
from uok.domain.events.progress import MAX_MESSAGE as MAX_PROGRESS

if TYPE_CHECKING:
    from uok.adapters.executor import CommandExecutor, ExecutionOutcome, RunningTurn
    from uok.domain.plan import UnitNode

__all__ = ["INLINE", "INLINE_WINDOW", "TurnWork"]

INLINE = True  # whether a lone command may start on the loop's thread at all (off: everything in the pool)
INLINE_WINDOW = 0.05  # seconds a task started on the loop's thread is pumped there before the pool takes it
Clock = Callable[[], Any]


class TurnWork:
    """The run's worker pool and its executions (see the module docstring).
    ``held``: an execution the loop starts on its own thread once its batch
    is carried out (:meth:`hold`, then the runner's ``_start_held``)."""

    def __init__(
        self,
        *,
        run_id: str,
        clock: Clock,
        executor: CommandExecutor,
        results: queue.Queue[ev.Event],
        plan_dir: Path,
        workers: int,
    ):
        self.run_id, self.clock, self.executor = run_id, clock, executor
        self.results, self.plan_dir = results, plan_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uok-worker")
        self._lock = threading.Lock()
        self._busy = 0  # pooled jobs whose observation is not queued yet
        self.held: tuple[UnitNode, str, int, dict[str, Any]] | None = None
        self.inline = INLINE

    # ------------------------------------------------------------------ the pool

    def submit(self, fn: Callable[..., ev.Event | None], *args: Any) -> None:
        """Run ``fn(*args)`` in the pool; the observation it returns is queued."""
        with self._lock:
            self._busy += 1

        def job() -> None:
            obs = None
            try:
                obs = fn(*args)
            finally:
                with self._lock:
                    self._busy -= 1  # before the queue: the loop that takes it sees the pool idle
                if obs is not None:
                    self.results.put(obs)

        self._pool.submit(job)

    def idle(self) -> bool:
        """No pooled job is running or waiting."""
        with self._lock:
            return self._busy == 0

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ executions

    def hold(self, node: UnitNode, turn_id: str, attempt: int, feedback: dict[str, Any]) -> None:
        self.held = (node, turn_id, attempt, feedback)

    def execution(self, node: UnitNode, turn_id: str, attempt: int, feedback: dict[str, Any]) -> ev.ExecutionFinished:
        """Run one execution to its end (in the pool): its observation."""
        try:
            out = self.executor.execute(node, **self._callbacks(node, turn_id, attempt, feedback))
            return self._finished(node, turn_id, out)
        except BaseException as exc:  # the executor should not raise; if it does, the unit fails  # noqa: BLE001
            return self._failed(node, turn_id, exc)

    def run_inline(self, node: UnitNode, turn_id: str, attempt: int, feedback: dict[str, Any]) -> None:
        """Start an execution on this thread and pump it for up to
        :data:`INLINE_WINDOW`: its observation is queued, or, still running,
        the rest of it is handed to the pool. Only an ``Exception`` becomes
        the unit's failure here (as in the pool); a ``KeyboardInterrupt`` or
        ``SystemExit`` on the loop's thread ends the run, the turn closed."""
        try:
            turn = self.executor.begin(node, **self._callbacks(node, turn_id, attempt, feedback))
            if not turn.pump(until=time.monotonic() + INLINE_WINDOW):
                self.submit(self._rest, node, turn_id, turn)
                return
            obs = self._finished(node, turn_id, turn.finish())
        except Exception as exc:  # noqa: BLE001 - the unit fails, as in the pool
            obs = self._failed(node, turn_id, exc)
        self.results.put(obs)

    def _rest(self, node: UnitNode, turn_id: str, turn: RunningTurn) -> ev.ExecutionFinished:
        try:
            turn.pump()
            return self._finished(node, turn_id, turn.finish())
        except BaseException as exc:  # noqa: BLE001
            return self._failed(node, turn_id, exc)

    def _callbacks(self, node: UnitNode, turn_id: str, attempt: int, feedback: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "turn_id": turn_id,
            "attempt": attempt,
            "feedback": feedback,
            "on_step": self._agent_step(node.id, turn_id) if node.agent is not None else None,
            "on_progress": self._progress(node.id, turn_id),
            "on_usage": self._usage(node.id, turn_id),
        }

    def _finished(self, node: UnitNode, turn_id: str, out: ExecutionOutcome) -> ev.ExecutionFinished:
        # ExecutionOutcome's fields are exactly the measured part of the event
        return ev.ExecutionFinished(
            run_id=self.run_id,
            at=self.clock(),
            turn_id=turn_id,
            unit_id=node.id,
            **msgspec.structs.asdict(out),
            products=observe_products(self.plan_dir, node.produces) if node.produces else {},
        )

    def _failed(self, node: UnitNode, turn_id: str, exc: BaseException) -> ev.ExecutionFinished:
        return ev.ExecutionFinished(
            run_id=self.run_id,
            at=self.clock(),
            turn_id=turn_id,
            unit_id=node.id,
            exit_code=None,
            duration_ms=0,
            error=redact(f"executor error: {exc}"),
        )

    def _progress(self, unit_id: str, turn_id: str) -> Callable[[str], None]:
        """Each line a task appends to its progress file (``UOK_PROGRESS_FILE``,
        ``uok progress``) becomes a ``ProgressReported`` observation, redacted
        and cut to a headline (uok.domain.events.progress)."""

        def report(line: str) -> None:
            message = redact(line.strip())[:MAX_PROGRESS]
            if message:
                self.results.put(
                    ev.ProgressReported(
                        run_id=self.run_id, at=self.clock(), turn_id=turn_id, unit_id=unit_id, message=message
                    )
                )

        return report

    def _usage(self, unit_id: str, turn_id: str) -> Callable[[tuple[ev.ModelUsage, ...]], None]:
        """Usage a task reports while it runs becomes a ``UsageReported``
        observation: the cost guard judges it at once (uok.domain.kernel.rules.pricing)."""

        def report(usage: tuple[ev.ModelUsage, ...]) -> None:
            self.results.put(
                ev.UsageReported(run_id=self.run_id, at=self.clock(), turn_id=turn_id, unit_id=unit_id, usage=usage)
            )

        return report

    def _agent_step(self, unit_id: str, turn_id: str) -> Callable[[dict[str, Any]], None]:
        """Each step of an agent's stream becomes an ``AgentStep`` observation,
        stepped by the main loop while the agent still runs (docs/agents.md)."""

        def record(step: dict[str, Any]) -> None:
            self.results.put(
                ev.AgentStep(run_id=self.run_id, at=self.clock(), turn_id=turn_id, unit_id=unit_id, **step)
            )

        return record
