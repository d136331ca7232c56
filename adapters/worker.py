"""``uok worker``: claim a shared run's units through the log and run them (issue 16).

A run started with ``uok run PLAN --claims`` dispatches its units as usual
(the kernel decides ``TurnStarted``) but runs none of their commands: each
such turn waits in the log. A worker, on this host or any other reaching the
same log (PostgreSQL, or one SQLite file on one machine):

1. folds the log as it grows (a kernel that only folds, driving nothing, and
   the claims of :mod:`uok.domain.policies.claims`);
2. claims the oldest unclaimed turn of its run: a ``UnitClaimed`` at epoch 1
   of the turn's claim stream (two workers racing for it: one append wins);
3. runs the unit's command as ``uok run`` would, renewing its lease with a
   ``ClaimRenewed`` every third of its TTL, and stops the task if a renewal
   is refused (its lease expired: another worker gets the unit) or the turn
   stopped (the run was stopped, the unit cancelled);
4. records the outcome as a fenced ``WorkerReported``: refused, nothing
   written, if its lease expired meanwhile.

The coordinator admits each report as the run's ``ExecutionFinished``
(gates, retries and the rest are decided there) and fails the turns whose
worker stopped renewing (``uok.adapters.runner``). The worker ends when its
run has ended.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from uok.adapters.artifacts import observe_products
from uok.adapters.claims import ClaimLost, append_fenced
from uok.adapters.eventlog import EventLog
from uok.domain import events as ev
from uok.domain.errors import InputError
from uok.domain.events.claims import measured
from uok.domain.kernel import Kernel
from uok.domain.log import codec
from uok.domain.policies.claims import CLAIM_TOPICS, ClaimState, apply

Clock = Callable[[], datetime]
DEFAULT_TTL = 30.0
_RUN_TOPICS = frozenset(
    f"{cls.__name__}/v{v}"
    for cls in (ev.KernelEntered, ev.KernelExited, ev.RunRecovered)
    for v in range(cls.VERSION + 1)
)


class Turn(NamedTuple):
    """A turn of the served run waiting for a worker."""

    turn_id: str
    unit_id: str
    attempt: int


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """One worker process serving one run of a shared log."""

    def __init__(
        self,
        log: EventLog,
        *,
        run_id: str = "",
        plan_id: str = "",
        ttl: float = DEFAULT_TTL,
        root: Path | None = None,
        clock: Clock = utc_now,
        say: Callable[[str], None] | None = None,
    ):
        if not ttl > 0:
            raise InputError(f"--lease must be > 0 seconds, got {ttl:g}")
        self.log, self.want_run, self.want_plan, self.ttl = log, run_id, plan_id, float(ttl)
        self.root, self.clock = root, clock
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.id = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:6]}"
        self.kernel = Kernel()
        self.claims = ClaimState()
        self.run: ev.KernelEntered | None = None
        self.position = 0
        self.stopping = threading.Event()  # SIGTERM/SIGINT: finish the turn in hand, then leave
        self.completed = self.refused = 0
        self._wanted = sorted(Kernel.folded_topics() | set(CLAIM_TOPICS))
        self._executor: Any = None

    # ------------------------------------------------------------------ the run

    def find_run(self, wait: float | None) -> ev.KernelEntered | None:
        """The open ``--claims`` run this worker serves (the newest matching
        one), waiting up to ``wait`` seconds (None: forever) for one to start."""
        deadline = None if wait is None else time.monotonic() + wait
        opened: dict[str, ev.KernelEntered] = {}
        position = 0
        while not self.stopping.is_set():
            head = self.log.store.head()[0]
            # every record's chain hash is checked on the way (a worker appends to this
            # log: a damaged one is refused, exit 3, rather than waited on)
            for _, e in self.log.events(position, upto=head, only=_RUN_TOPICS):
                if isinstance(e, ev.KernelEntered):
                    if e.flags.get("claims") and self._matches(e):
                        opened[e.run_id] = e
                elif isinstance(e, ev.KernelExited):
                    opened.pop(e.run_id, None)
                elif isinstance(e, ev.RunRecovered):
                    opened.pop(e.recovered_run, None)
            position = head
            if opened:
                return list(opened.values())[-1]
            if self.want_run and self._run_ended(self.want_run):
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self.stopping.wait(0.2)
        return None

    def _matches(self, e: ev.KernelEntered) -> bool:
        if self.want_run:
            return e.run_id == self.want_run
        if self.want_plan:
            return plan_id_of(e) == self.want_plan
        return True

    def _run_ended(self, run_id: str) -> bool:
        for r in self.log.store.read(0, stream=f"run:{run_id}", limit=1):
            return r is not None  # it entered: find_run saw it ended (or it is not a --claims run)
        return False

    def serve(self, wait: float | None = None) -> int:
        """Serve the run until it ends; returns how many turns this worker completed."""
        run = self.find_run(wait)
        if run is None:
            return 0
        self.run = run
        self._executor = self._build_executor(run)
        self._append(ev.WorkerJoined, worker=self.id, host=self.host, pid=self.pid, ttl_seconds=self.ttl)
        self.say(f"worker {self.id} serving run {run.run_id} (lease {self.ttl:g}s)")
        reason = "the run ended"
        try:
            while not self.stopping.is_set():
                self.refresh()
                if self.run_over():
                    break
                turn = self.next_turn()
                if turn is None:
                    self.stopping.wait(0.05)
                    continue
                self.work(turn)
            else:
                reason = "stopped"
        finally:
            self._executor.cancel_all()
            with contextlib.suppress(Exception):  # leaving is best effort (the log may be gone)
                self._append(ev.WorkerLeft, worker=self.id, host=self.host, pid=self.pid, reason=reason)
        return self.completed

    def _append(self, cls: type[ev.Event], **fields: Any) -> None:
        assert self.run is not None
        self.log.append([cls(run_id=self.run.run_id, at=self.clock(), **fields)])

    # ------------------------------------------------------------------ folding

    def refresh(self) -> None:
        """Fold what was appended since the last call, by anyone."""
        head = self.log.store.head()[0]
        if head <= self.position:
            return
        k, wanted, run = self.kernel, self._wanted, self.run
        for r in self.log.store.read(self.position, upto=head, topics=wanted):
            e = codec.decode(r.topic, r.payload)
            if run is not None and isinstance(e, ev.KernelEntered) and e.run_id == run.run_id:
                k.state.enter(e)  # the shadow kernel "drives" the run: its plan, its turns in flight
            k.apply(e)
            apply(self.claims, e)
        self.position = head

    def run_over(self) -> bool:
        assert self.run is not None
        info = self.kernel.state.runs.get(self.run.run_id)
        return (info is not None and info.status != "open") or self.kernel.state.exited

    def next_turn(self) -> Turn | None:
        """The oldest turn of the run in flight that no worker claimed (or voided) and that runs a command."""
        st = self.kernel.state
        for turn in st.in_flight.values():
            if turn.turn_id in self.claims.claims:
                continue
            node = st.nodes.get(turn.unit_id)
            if node is None or (node.command is None and node.agent is None):
                continue  # the coordinator checks a command-less unit's products itself
            return Turn(turn.turn_id, turn.unit_id, turn.attempt)
        return None

    # ------------------------------------------------------------------ one turn

    def work(self, turn: Turn) -> None:
        """Claim ``turn``, run it under a renewed lease, report its outcome."""
        assert self.run is not None
        base: dict[str, Any] = {
            "run_id": self.run.run_id,
            "turn_id": turn.turn_id,
            "worker": self.id,
            "host": self.host,
            "pid": self.pid,
        }
        try:
            append_fenced(
                self.log,
                ev.UnitClaimed(
                    **base, at=self.clock(), epoch=1, unit_id=turn.unit_id, attempt=turn.attempt, ttl_seconds=self.ttl
                ),
            )
        except ClaimLost:
            return  # another worker was first: fold and look again
        epoch = 1
        node = self.kernel.dispatched_node(turn.unit_id)
        done: Future[Any] = Future()
        thread = threading.Thread(
            target=self._execute, args=(node, turn, done), name=f"uok-worker-{turn.unit_id}", daemon=True
        )
        thread.start()
        lost = ""
        next_beat = time.monotonic() + self.ttl / 3
        while not done.done():
            with contextlib.suppress(TimeoutError):
                done.result(timeout=min(0.2, self.ttl / 6))
            if done.done():
                break
            self.refresh()
            if turn.turn_id not in self.kernel.state.in_flight or self.run_over() or self.stopping.is_set():
                self._executor.stop(
                    turn.turn_id, "shutdown" if self.stopping.is_set() else "cancel"
                )  # the run stopped the turn: stop, still report
            if not lost and time.monotonic() >= next_beat:
                try:
                    renewal = ev.ClaimRenewed(**base, at=self.clock(), epoch=epoch + 1, ttl_seconds=self.ttl)
                    append_fenced(self.log, renewal, own_epoch=True)
                    epoch += 1
                except ClaimLost as exc:
                    lost = str(exc)
                    self.say(f"worker {self.id}: lease on unit {turn.unit_id} lost ({exc}); stopping its task")
                    self._executor.stop(turn.turn_id, "lease")
                except Exception as exc:  # noqa: BLE001 - the log unreachable for a moment: try again at the next beat
                    self.say(f"worker {self.id}: heartbeat of unit {turn.unit_id} failed ({exc}); retrying")
                next_beat = time.monotonic() + self.ttl / 3
        outcome = done.result()
        if lost:
            self.refused += 1
            return
        fields = measured(outcome)
        if node.produces:
            fields["products"] = observe_products(self.plan_root(), node.produces)
        try:
            report = ev.WorkerReported(**base, at=self.clock(), epoch=epoch + 1, unit_id=turn.unit_id, **fields)
            append_fenced(self.log, report, own_epoch=True)
        except ClaimLost as exc:
            self.refused += 1
            self.say(f"worker {self.id}: result of unit {turn.unit_id} refused: {exc}")
            return
        self.completed += 1

    def _execute(self, node: Any, turn: Turn, done: Future[Any]) -> None:
        from uok.adapters.executor import ExecutionOutcome

        try:
            out = self._executor.execute(
                node,
                run_id=self.kernel.state.run_id,
                turn_id=turn.turn_id,
                attempt=turn.attempt,
                feedback=self._feedback(turn),
            )
        except BaseException as exc:  # noqa: BLE001 - the executor should not raise; if it does, the unit fails
            out = ExecutionOutcome(exit_code=None, duration_ms=0, error=f"executor error: {exc}")
        done.set_result(out)

    def _feedback(self, turn: Turn) -> dict[str, Any]:
        try:
            return self._feedback_index.feedback(
                plan_id=self.kernel.state.plan_id, run_id=self.kernel.state.run_id, unit_id=turn.unit_id, turn_id=turn.turn_id,
                attempt=turn.attempt,
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - feedback is a courtesy to the task, never a reason to fail it
            return {}

    # ------------------------------------------------------------------ the executor

    def plan_root(self) -> Path:
        """Where the run's tasks run: ``--dir``, else the plan's directory as the run recorded it."""
        assert self.run is not None
        return self.root or Path(self.run.plan_path).parent

    def _build_executor(self, run: ev.KernelEntered) -> Any:
        from uok.adapters.executor import CommandExecutor
        from uok.adapters.feedback import FeedbackIndex
        from uok.adapters.secrets import redact
        from uok.adapters.turnlogs import LogsDir

        from uok.bootstrap import eval_env, recorded_settings_of, task_log_target, task_settings

        root = self.plan_root()
        if not root.is_dir():
            raise InputError(f"the run's plan directory {root} does not exist on this host: give --dir DIR")
        logs = LogsDir.for_store(self.log.store, plan_dir=root)
        self._feedback_index = FeedbackIndex(self.log, logs)
        return CommandExecutor(
            root,
            env=eval_env(run.flags),
            redact=redact,
            logs=logs,
            db=task_log_target(self.log.store),
            plan_id=plan_id_of(run),
            tasks=task_settings(run.flags),
            models=recorded_settings_of(run.flags).models,
        )


def plan_id_of(e: ev.KernelEntered) -> str:
    """The plan id a run's recorded plan declares (without compiling it):
    recorded with the entry since KernelEntered v2 (whose text may be a
    reference, uok.domain.plan.content), else read from the text."""
    import tomllib

    if e.plan_id:
        return e.plan_id
    try:
        return str(tomllib.loads(e.plan_source).get("plan", {}).get("id", ""))
    except (tomllib.TOMLDecodeError, AttributeError):
        return ""
