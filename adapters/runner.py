"""``uok run``: the imperative shell around the pure kernel.

The loop is: measure something (a clock reading, a pid probe, a subprocess
result, a signal) → wrap it in an observation → ``kernel.handle`` →
append the observation and its decisions in ONE transaction → carry out the
decisions' side effects. Because every input is in the log before anything
acts on it, a crash at any point leaves a log the next run can recover from,
and a finished run can be replayed decision by decision.

Only the main thread appends; worker threads just run subprocesses and hand
their outcomes back through a queue.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from uok.adapters.artifacts import ArtifactWatch, observe_products
from uok.adapters.chaos import passes
from uok.adapters.eventlog import EventLog
from uok.adapters.orphans import end_leftovers
from uok.adapters.probes import pid_alive
from uok.adapters.secrets import redact
from uok.adapters.stop_signals import on_stop_signals
from uok.adapters.turnwork import TurnWork
from uok.domain import events as ev
from uok.domain.errors import InputError, RuntimeFailure
from uok.domain.events import GateRequested
from uok.domain.kernel import Kernel
from uok.domain.log.errors import IntegrityError
from uok.domain.log.store import StreamMoved
from uok.domain.plan import UnitGraph
from uok.domain.plan.content import text_sha256
from uok.domain.plan.graph import clamp_workers
from uok.domain.policies import cost_guard

if TYPE_CHECKING:
    from uok.adapters.chaos import ChaosMonkey, NoChaos
    from uok.adapters.claims import ClaimDesk
    from uok.adapters.executor import CommandExecutor
    from uok.adapters.feedback import FeedbackIndex
    from uok.adapters.gates.host import GateHost
    from uok.adapters.kernel_checkpoint import RunCheckpoints
    from uok.adapters.observer import TurnHooks
    from uok.adapters.steering import SteeringPoller

__all__ = ["KernelRunner", "RunLoop", "RunResult", "UsageError", "fold_log", "load_plan", "pid_alive"]

Clock = Callable[[], datetime]
ENTRY_ATTEMPTS = 20  # entries lost to another writer before a start gives up (each means the log moved)
DRAIN = 256  # observations stepped together before their effects are carried out (one commit, one fsync)
# what the turn hooks record and nothing acts on: held back to the next append (KernelRunner._step)
_HELD = (ev.WriterTokenAcquired, ev.WriterTokenReleased, ev.TurnClosed)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UsageError(InputError):
    """Bad input from the user: reported with exit code 2, nothing written."""


class RunObserver(Protocol):
    def on_events(self, events: list[ev.Event]) -> None: ...


class RunResult(msgspec.Struct, frozen=True):
    run_id: str
    status: str
    units_completed: int
    units_failed: int
    error: str = ""
    signal: str = ""  # the signal that ended a 'terminated' run (SIGINT, SIGTERM)

    @property
    def exit_code(self) -> int:
        """0 ok; 128 + the signal's number for a run a signal ended (130 for
        Ctrl-C, 143 for SIGTERM); 1 otherwise."""
        if self.status == "terminated" and self.signal:
            with contextlib.suppress(KeyError):
                return 128 + signal.Signals[self.signal].value
        if self.status != "ok":
            return 1
        return 1 if self.units_failed else 0


def load_plan(path: Path) -> tuple[str, UnitGraph]:
    """Read and compile a plan (with its Markdown task files,
    :mod:`uok.adapters.planfiles`); every problem is bad input (exit 2)."""
    from uok.adapters.planfiles import load_plan_sources

    sources, graph = load_plan_sources(path)
    return sources.source, graph


def fold_log(log: EventLog, kernel: Kernel) -> None:
    """Fold the whole log into ``kernel`` (decoding only the types it folds)."""
    apply = kernel.apply
    for _, e in log.events(only=Kernel.folded_topics()):
        apply(e)


class RunLoop:
    """What a run's collaborators may use of its loop, and nothing more:
    record an observation (decided on and appended like any other), read
    the kernel's current state, the run's id and clock.

    The composition root (:mod:`uok.bootstrap`) builds the collaborators
    (turn hooks, steering poller, chaos) around a RunLoop before the
    runner exists; the runner binds itself to it when it is constructed.
    """

    def __init__(self, run_id: str, clock: Clock):
        self.run_id, self.clock = run_id, clock
        self._runner: KernelRunner | None = None

    def bind(self, runner: KernelRunner) -> None:
        self._runner = runner

    @property
    def kernel(self) -> Kernel:
        """The runner's kernel now (it is rebuilt after a failed append)."""
        assert self._runner is not None, "RunLoop used before its runner was built"
        return self._runner.kernel

    def record(self, obs: ev.Event, *, prior: Sequence[ev.Event] = ()) -> None:
        assert self._runner is not None, "RunLoop used before its runner was built"
        self._runner._step(obs, prior=prior)


class KernelRunner:
    """The loop of one run: measure -> handle -> append -> act.

    Receives every collaborator built (by :func:`uok.bootstrap.assemble_runner`):
    the executor that runs commands, the gate host, the turn hooks (writer
    tokens, gitops, turn observers), the steering poller and the chaos
    monkey, and the run's resolved flags. It builds nothing itself.
    """

    def __init__(
        self,
        log: EventLog,
        plan_path: Path,
        plan_source: str,
        *,
        graph: UnitGraph,
        loop: RunLoop,
        workers: int,
        flags: dict[str, Any],
        executor: CommandExecutor,
        feedback: FeedbackIndex,
        gates: GateHost,
        hooks: TurnHooks,
        steering: SteeringPoller,
        chaos: NoChaos | ChaosMonkey,
        observer: RunObserver | None = None,
        checkpoints: RunCheckpoints | None = None,
        plan_files: dict[str, str] | None = None,
        plan_globs: dict[str, tuple[str, ...]] | None = None,
    ):
        self.log = log
        self.checkpoints = checkpoints  # start from the durable kernel snapshot (uok.adapters.kernel_checkpoint)
        self.plan_path = Path(plan_path)
        self.plan_source = plan_source
        self.plan_files = plan_files or {}  # Markdown task files, recorded with the plan
        self.artifacts = ArtifactWatch(self.plan_path.parent, graph)  # files units require (behaviour §11)
        self.plan_globs = plan_globs or {}
        self.plan_id = graph.plan_id
        self.plan_sha256 = text_sha256(self.plan_source, self.plan_files, self.plan_globs)
        self._planned = {n.id: n for n in graph.nodes}  # as the file has them: the log's plan is redacted
        self.workers = clamp_workers(workers)
        self.flags = flags  # resolved, recorded in KernelEntered
        self.loop = loop
        self.clock = loop.clock
        self.run_id = loop.run_id
        self.observer = observer
        self.kernel = Kernel()
        self.executor = executor
        self.feedback = feedback  # what earlier attempts left, for each task's feedback file
        self.gates = gates
        self.turn_hooks = hooks
        self.steering = steering
        self.chaos = chaos  # --chaos / [uok.chaos]: faults at phase boundaries (uok.adapters.chaos)
        self._results: queue.Queue[ev.Event] = queue.Queue()
        self._work: TurnWork | None = None  # the worker pool, and executions on this thread (issue 15)
        self._exit: ev.KernelExited | None = None
        self._signal = ""  # the first signal received
        self._timers: list[threading.Timer] = []  # BreakerDue wake-ups (a unit held by a breaker)
        # turns whose ExecutionFinished the loop has not stepped yet -> (unit id, attempt)
        self._executing: dict[str, tuple[str, int]] = {}
        self._lease: dict[str, int] | None = None  # the plan's lease stream -> epoch, once entered
        self.claims: ClaimDesk | None = None  # --claims: `uok worker` processes run the units (issue 16)
        # while a batch of observations is stepped: their decisions (or a closeout to record),
        # carried out once all are recorded
        self._deferred: list[list[ev.Event] | Callable[[], None]] | None = None
        # observations that decide nothing, recorded while the store's group is open (writer tokens,
        # closeouts): appended with the next append, or before the group commits (_flush, issue 15)
        self._unflushed: list[ev.Event] = []
        self._unflushed_seen: list[ev.Event] = []  # ... and what the run observer hears once they are
        self._to_hear: list[ev.Event] = []  # appended, not yet told to the run observer
        hooks.linger = self._executing.__contains__  # a stopped turn closes out when its process is gone
        loop.bind(self)

    # -------------------------------------------------------------- main loop

    def run(self) -> RunResult:
        if self.checkpoints is not None:
            self.kernel = self.checkpoints.restore()  # the snapshot, then only the events after it
        else:
            fold_log(self.log, self.kernel)
        self._work = TurnWork(
            run_id=self.run_id,
            clock=self.clock,
            executor=self.executor,
            results=self._results,
            plan_dir=self.plan_path.parent,
            workers=self.workers,
        )
        restore = self._install_signal_handlers()
        self.log.defer_sync(True)  # group commits: durable at each action (_effects) and at the end
        self.log.group(True)  # and one transaction per batch, committed before any action or wait
        self.log.keep_appended(self.checkpoints is not None)  # the read models fold them at the end unread
        try:
            self._enter()
            wait = 0.2 if self.claims is None else 0.05
            while self._exit is None:
                self.steering.poll()  # a turn boundary: apply steering messages (uok.adapters.steering)
                if self._exit is not None:  # a steering message ended the run
                    break
                if self.claims is not None and self.claims.due():
                    self._poll_claims()
                    if self._exit is not None:
                        break
                self._commit()  # nothing waits with the write lock held
                self._start_held()
                try:
                    obs = self._results.get(timeout=wait)
                except queue.Empty:
                    continue
                self._received_batch(obs)
        except BaseException as exc:  # record the exit in every case (behaviour §1: finally)
            if self._exit is None and self.kernel.has_entered(
                self.run_id
            ):  # nothing to close if the entry never landed
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                with contextlib.suppress(Exception):
                    self._step(ev.KernelFailed(run_id=self.run_id, at=self.clock(), error=redact(error)))
            raise
        finally:
            restore()
            for timer in self._timers:
                timer.cancel()
            self.executor.cancel_all()
            self.gates.cancel_all()
            self.turn_hooks.release_all()
            try:
                self._work.shutdown()
                self._flush()
                self._hear()
                self.log.group(False)  # the last group committed
                if self.checkpoints is not None:
                    self.checkpoints.after_run()  # snapshot and read models current for the next command
            finally:
                self.log.keep_appended(False)
                try:
                    self.log.group(False)
                finally:
                    self.log.defer_sync(False)  # everything recorded is durable before the run returns
            checkpoint = getattr(self.log.store, "checkpoint", None)  # SQLite: the run's events into the file
            if checkpoint is not None:
                with contextlib.suppress(Exception):
                    checkpoint()
        x = self._exit
        return RunResult(
            run_id=self.run_id,
            status=x.status,
            units_completed=x.units_completed,
            units_failed=x.units_failed,
            error=x.error,
            signal=self._signal if x.status == "terminated" else "",
        )

    def _received_batch(self, obs: ev.Event) -> None:
        """Step ``obs`` and every observation already waiting behind it (up
        to ``DRAIN``), then carry out all their decisions' effects, in order.
        Group commits across turns (issue 15): when several tasks finish
        while the loop is busy, their results and decisions are recorded
        together and the first action's ``sync`` makes them all durable
        with one fsync; each observation is still decided on everything
        recorded before it, and nothing acts before it is durable."""
        batch = [obs]
        with contextlib.suppress(queue.Empty):
            while len(batch) < DRAIN:
                batch.append(self._results.get_nowait())
        deferred: list[list[ev.Event] | Callable[[], None]] = []
        self._deferred = deferred
        try:
            for o in batch:
                self._received(o)
        finally:
            self._deferred = None
        if getattr(self.turn_hooks, "observers", None):  # observers act: each decision in turn, as it comes
            for item in deferred:
                self._effects(item) if isinstance(item, list) else item()
            return
        for item in deferred:  # first what is only recorded: writer tokens, closeouts ...
            if isinstance(item, list):
                for d in item:
                    self._bookkeep(d)
            else:
                item()
        for item in deferred:  # ... then the actions, after one sync
            if isinstance(item, list):
                for d in item:
                    self._act(d)
        self._start_held()

    def _later(self, record: Callable[[], None]) -> None:
        """Record now, or with the batch being stepped."""
        if self._deferred is not None:
            self._deferred.append(record)
        else:
            record()

    def _commit(self) -> None:
        """Commit the open group of appends (uok.adapters.eventlog.EventLog.group)."""
        try:
            self._flush()
            self.log.commit()
        except BaseException:
            self._resync()  # the group is not in the log: the kernel folds what is
            raise
        self._hear()

    def _sync(self) -> None:
        """Commit the open group and make everything recorded durable: before any action."""
        try:
            self._flush()
            self.log.sync()
        except BaseException:
            self._resync()
            raise
        self._hear()

    def _flush(self) -> None:
        """Append the turn hooks' bookkeeping held back by :meth:`_step`, on
        its own (nothing when none is held). Its failure is the run's: it
        may be triggered by a caller that expects to lose races of its own
        (a writer token's, a steering message's read), so a conflict here is
        never raised as one of those."""
        if not self._unflushed:
            return
        held, heard = self._unflushed, self._unflushed_seen
        self._unflushed, self._unflushed_seen = [], []
        try:
            positions = self.log.append(held, versions=self._unit_versions(held), expect=self._lease)
        except (IntegrityError, StreamMoved) as exc:
            raise RuntimeFailure(f"the run's turn bookkeeping could not be recorded: {exc}") from exc
        self.feedback.appended(positions, held)
        if self.observer is not None:
            self._to_hear += heard

    def _received(self, obs: ev.Event, *, prior: Sequence[ev.Event] = (), expect: dict[str, int] | None = None) -> None:
        """Step what a worker (or a signal handler) reported."""
        if isinstance(obs, ev.SignalReceived):
            if self._signal:  # asked twice (a second Ctrl-C): the grace period is over
                self.executor.kill_all()
            self._signal = self._signal or obs.signal
        finished = obs.turn_id if isinstance(obs, ev.ExecutionFinished) else None
        if finished is not None:
            self._executing.pop(finished, None)
            facts = self.artifacts.changed()  # what the unit wrote may release held units
            if facts is not None:
                self._step(ev.ArtifactsObserved(run_id=self.run_id, at=self.clock(), facts=facts))
        self.chaos.strike("finalize", obs)  # a result is about to be judged
        self._step(obs, prior=prior, expect=expect)
        if finished is not None:
            turn_id = finished
            self._later(lambda: self.turn_hooks.close_lingering(turn_id))  # a stopped turn's process is gone now

    def _enter(self) -> None:
        """Take the plan's lease and enter the run, in one transaction.

        The lease (recorded after the entry's decisions, in the same
        transaction) takes an epoch one more than the last this process folded; a
        process that started the plan at the same moment folded the same
        epoch, so exactly one of the two appends succeeds (behaviour §1: one
        live run per plan). The loser wrote nothing, not even its
        ``KernelEntered``; it folds the log again and probes: the winner is
        alive, so it refuses (exit 2, naming the run, its pid and host). If
        the winner is gone already, or the conflict was on another plan's
        units (two runs recovering the same dead run), it tries again."""
        if self.flags.get("claims"):  # before the entry: its first dispatches already wait for workers
            from uok.adapters.claims import ClaimDesk

            self.claims = ClaimDesk(self.log, self.run_id, after=self.log.store.head()[0])
        for _ in range(ENTRY_ATTEMPTS):
            probes = self._probe_open_runs(self.plan_id)
            at = self.clock()
            lease = ev.PlanLeased(
                run_id=self.run_id,
                at=at,
                plan_id=self.plan_id,
                epoch=self.kernel.state.leases.get(self.plan_id, 0) + 1,
                pid=os.getpid(),
                host=socket.gethostname(),
            )
            held = self.kernel.state.contents.get(self.plan_id)
            by_ref = held is not None and held.text_sha256 == self.plan_sha256  # the log holds this text already
            entered = ev.KernelEntered(
                run_id=self.run_id,
                at=at,
                pid=lease.pid,
                host=lease.host,
                plan_path=str(self.plan_path),
                plan_source="" if by_ref else self.plan_source,
                plan_files={} if by_ref else self.plan_files,
                plan_globs={} if by_ref else self.plan_globs,
                plan_id=self.plan_id,
                plan_sha256=self.plan_sha256,
                plan_by_ref=by_ref,
                artifacts=self.artifacts.observe(),  # the files units require, as they are now (behaviour §11)
                workers=self.workers,
                flags=self.flags,
                work_mode=str(self.flags.get("work_mode", "auto")),
                model_mode=str(self.flags.get("model_mode", "default")),
                probes=probes,
            )
            try:
                self._step(entered, after=(lease,))
            except IntegrityError:  # another process wrote first: nothing was written, the kernel was refolded
                continue
            self._lease = {lease.stream(): lease.epoch}
            return
        raise RuntimeFailure(
            f"could not start plan {self.plan_id!r}: the log changed under every one of {ENTRY_ATTEMPTS} attempts"
        )

    def _step(
        self,
        obs: ev.Event,
        *,
        prior: Sequence[ev.Event] = (),
        after: Sequence[ev.Event] = (),
        expect: dict[str, int] | None = None,
    ) -> None:
        """``prior``: observations the kernel decides nothing about, appended
        just before ``obs`` in the same transaction (a steering message's read);
        ``after``: such observations appended after its decisions (the plan's
        lease, folded by the kernel like any observation); ``expect``: more
        streams checked at their versions (a claim's epoch, issue 16).

        The units' stream versions come from the kernel's own fold and the
        plan's lease is checked inside the transaction: a process that lost
        either writes nothing."""
        try:
            decisions = self.kernel.handle(obs)
            for late in after:
                decisions += self.kernel.handle(late)  # nothing: they decide nothing
            batch = [*prior, obs, *decisions, *after]
            if isinstance(obs, _HELD) and not decisions and not prior and not after and self.log.grouped():
                # the turn hooks' bookkeeping decides nothing and nothing acts on it: held back, it is
                # appended in one append for all of a batch, in order, in the open group (which holds the
                # write lock: no other process can take its stream version meanwhile), before any other
                # append, any commit and so any action (issue 15)
                self._unflushed += batch
                self._unflushed_seen.append(obs)
                return
            self._append(batch, seen=(obs, *decisions), expect=expect)
        except BaseException:
            self._resync()
            raise
        self._hear()
        if self._deferred is not None:
            self._deferred.append(decisions)
        else:
            self._effects(decisions)

    def _append(
        self, batch: list[ev.Event], *, seen: Sequence[ev.Event] = (), expect: dict[str, int] | None = None
    ) -> None:
        """Append ``batch`` under the plan's lease (what :meth:`_step` held
        back first, in its own append); ``seen`` is what the run observer
        hears of next (:meth:`_hear`)."""
        self._flush()  # first, on its own: a failure of this append stays this append's
        fence = {**self._lease, **expect} if self._lease and expect else (expect or self._lease)
        positions = self.log.append(batch, versions=self._unit_versions(batch), expect=fence)
        self.feedback.appended(positions, batch)  # folded at the next feedback file without a read
        if self.observer is not None:
            self._to_hear += seen

    def _hear(self) -> None:
        """Tell the run observer what was appended (in log order), once it is."""
        if self._to_hear:
            events, self._to_hear = self._to_hear, []
            if self.observer is not None:
                self.observer.on_events([self._resolved(e) for e in events])

    def _resolved(self, e: ev.Event) -> ev.Event:
        """``e`` as observers read it: a ``PlanCompiled`` that references its
        graph carries it (the kernel holds it), so they never look it up."""
        return self.kernel.with_graph(e) if isinstance(e, ev.PlanCompiled) else e

    def _unit_versions(self, batch: Sequence[ev.Event]) -> dict[str, int] | None:
        """Stream -> version before ``batch`` of every unit it moves, as the
        kernel folded it (its record counts every transition, this batch's
        included)."""
        moved: dict[str, int] = {}
        for e in batch:
            if isinstance(e, ev.UnitTransitioned):
                stream = e.stream()
                moved[stream] = moved.get(stream, 0) + 1
        if not moved:
            return None
        units = self.kernel.state.units
        out = {}
        for e in batch:
            if isinstance(e, ev.UnitTransitioned) and (stream := e.stream()) not in out:
                rec = units.get((e.plan_id, e.unit_id))
                out[stream] = (rec.transitions if rec is not None else 0) - moved[stream]
        return out

    def _workers(self) -> TurnWork:
        """The pool ``run`` started: commands and gates run there, off the main loop."""
        if self._work is None:
            raise RuntimeError("the runner's worker pool is used before run() started it")
        return self._work

    def _start_held(self) -> None:
        """Start the execution :meth:`_act` held for this thread (uok.adapters.turnwork),
        if it is still all there is in flight and nothing waits to be stepped; else in the pool."""
        work = self._work
        if work is None or work.held is None:
            return
        held, work.held = work.held, None
        if self._exit is not None:  # the run is over: never started, like a pool job cancelled at shutdown
            return
        if len(self._executing) == 1 and held[1] in self._executing and work.idle() and self._results.empty():
            self._sync()  # nothing new since the action's sync, unless a later action recorded something
            work.run_inline(*held)
        else:
            work.submit(work.execution, *held)

    def _effects(self, decisions: list[ev.Event]) -> None:
        """Carry out the decisions. Every action on the world (a process
        started or stopped, a gate run, an observer's git work, a feedback
        file rewritten) is preceded by ``log.sync()``: the commits it follows
        from are durable first (group commits, issue 15: the bookkeeping
        commits in between, the writer token's and the closeout's, share
        that one fsync; ``EventLog.defer_sync``). Without turn observers,
        what the turn hooks only record (writer tokens, closeouts) is
        recorded for every decision first, then the actions follow: the
        next turn's token and the last one's release share the commit and
        fsync of the decisions (issue 15)."""
        if getattr(self.turn_hooks, "observers", None):
            for d in decisions:
                self._sync()  # observers act (gitops commits files)
                self._bookkeep(d)
                self._act(d)
            return
        for d in decisions:
            self._bookkeep(d)
        for d in decisions:
            self._act(d)

    def _bookkeep(self, d: ev.Event) -> None:
        self.turn_hooks.on_decision(d)  # writer token, turn observers, gitops (uok.adapters.observer)
        self.gates.note(d)  # warnings the pure gate runner cannot log

    def _act(self, d: ev.Event) -> None:
        """The action a decision asks for, if any; durable first (``_sync``)."""
        kind = type(d)
        if kind is ev.PhaseResult or (kind is ev.UnitTransitioned and d.to_state != "cancelled"):  # type: ignore[attr-defined]
            return  # most decisions ask for nothing (issue 15, CPU per task)
        sync = self._sync
        if isinstance(d, ev.TurnStarted):
            # the planned node (unredacted) with its effective modes (behaviour §5)
            node = self.kernel.dispatched_node(d.unit_id, self._planned.get(d.unit_id))
            runs = node.command is not None or node.agent is not None
            if runs and d.turn_id not in self.kernel.state.in_flight:
                # the turn ended before its dispatch was acted on (a signal stepped in the same
                # batch stopped it, and its closeout is recorded): nothing to start
                return
            if runs and self.claims is not None:  # a `uok worker` claims it through the log
                self._executing[d.turn_id] = (node.id, d.attempt)
                return
            run = self.chaos.strike("dispatch", d) if runs else None
            if not runs and node.produces:  # a complete-slice verifying its slice's products (behaviour §13)
                facts = observe_products(self.plan_path.parent, node.produces)
                self._results.put(
                    ev.ProductsObserved(
                        run_id=self.run_id, at=self.clock(), turn_id=d.turn_id, unit_id=node.id, facts=facts
                    )
                )
            if run is not None:  # None: no command, or a chaos partial failure ended the attempt
                self._executing[d.turn_id] = (node.id, d.attempt)
                feedback = self._feedback(node.id, d.turn_id, d.attempt)  # read on this thread: the log's reader
                sync()
                work = self._workers()
                alone = work.inline and len(self._executing) == 1 and work.held is None and work.idle()
                if alone and passes(run) and node.agent is None and self.claims is None:
                    work.hold(node, d.turn_id, d.attempt, feedback)  # the only thing in flight: on this thread
                    return
                work.submit(run(work.execution), node, d.turn_id, d.attempt, feedback)
        elif isinstance(d, ev.UnitTransitioned) and d.to_state == "cancelled" and d.turn_id:
            why = "shutdown" if self._signal else "cancel"
            sync()
            if self.claims is not None and d.turn_id in self._executing:
                if self.claims.revoke(d.turn_id, d.unit_id, self.clock()):  # no worker had it: nothing runs
                    self._executing.pop(d.turn_id, None)
                    self.turn_hooks.close_lingering(d.turn_id)  # its stop was booked as lingering: close it now
                return  # else its worker sees the turn stopped, stops the task and reports
            self.executor.stop(d.turn_id, why)  # graceful: SIGTERM, grace, SIGKILL (uok.adapters.taskprocess)
        elif isinstance(d, GateRequested) and d.run_id == self.run_id:  # run a gate off the main loop
            run = self.chaos.strike("gate", d)
            if run is not None:
                sync()
                self._workers().submit(run(self._gate), d, self.gates.context(d, self.kernel))
        elif isinstance(d, ev.TurnFinished) and d.status != "stopped" and d.turn_id in self._executing:
            sync()
            self.executor.stop(d.turn_id, "guard")  # decided mid-turn (an agent over its cost ceiling)
        elif isinstance(d, ev.KernelExited) and d.run_id == self.run_id:
            self._exit = d
        elif isinstance(d, ev.BreakerHeld | ev.BreakerTransitioned) and d.run_id == self.run_id:
            self._wake_for_breaker(d)
        elif isinstance(d, ev.SteeringApplied) and d.command == "note":
            sync()
            self._notes_arrived()

    def _poll_claims(self) -> None:
        """Admit the workers' reports of this run's turns (each stepped as an
        ``ExecutionFinished``), and fail the turns whose worker's lease ran
        out (a ``ClaimExpired`` at the claim's next epoch, in the transaction
        of the turn's failed ``ExecutionFinished``: the unit is retried
        within its budget). A worker that renewed or reported meanwhile
        wins the epoch: the expiry writes nothing and is seen again."""
        from uok.adapters.claims import admitted_report

        assert self.claims is not None
        reports, lost = self.claims.poll(self._executing.__contains__)
        for report in reports:
            self._received(admitted_report(report, self.clock()))
        for claim in lost:
            if claim.turn_id not in self._executing:
                continue
            expired, failed = self.claims.expiry(claim, self.clock())
            held = self._executing[claim.turn_id]
            try:
                self._received(failed, prior=(expired,), expect={expired.stream(): claim.epoch})
            except (IntegrityError, StreamMoved):  # the worker renewed (or reported) first: nothing written,
                self._executing[claim.turn_id] = held  # the kernel refolded from the log; its report will come

    def _wake_for_breaker(self, d: ev.BreakerHeld | ev.BreakerTransitioned) -> None:
        """A unit is held until a breaker lets a probe through: come back then
        with a ``BreakerDue`` (nothing else may arrive to wake the run)."""
        if isinstance(d, ev.BreakerHeld):
            key, until = d.breaker, d.until
        elif d.to_state == "open" and (d.breaker or d.gate_id) in self.kernel.state.gates.holds.values():
            key, until = d.breaker or d.gate_id, d.open_until  # a failed probe: the held units wait again
        else:
            return
        delay = max(0.0, (until - self.clock()).total_seconds()) + 0.05 if until is not None else 1.0

        def due() -> None:
            self._results.put(ev.BreakerDue(run_id=self.run_id, at=self.clock(), gate_id=d.gate_id, breaker=key))

        timer = threading.Timer(delay, due)
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _gate(self, req: GateRequested, ctx) -> ev.Event:
        return self.gates.evaluate(req, ctx)  # never raises (uok.adapters.gates.host)

    def _feedback(self, unit_id: str, turn_id: str, attempt: int) -> dict[str, Any]:
        """What the task's feedback file holds (uok.adapters.feedback)."""
        data = self.feedback.feedback(
            plan_id=self.plan_id, run_id=self.run_id, unit_id=unit_id, turn_id=turn_id, attempt=attempt
        )
        st = self.kernel.state
        if st.flags.settings.enabled and st.flags.settings.cost_guard.enabled:  # the task is told its budget
            data["budget"] = cost_guard.budget(
                st.gates.costs, st.flags.settings.cost_guard, plan_id=self.plan_id, unit_id=unit_id, now=self.clock()
            )
        return data

    def _notes_arrived(self) -> None:
        """A note was applied: running tasks see it in their feedback files now."""
        for turn_id, (unit_id, attempt) in list(self._executing.items()):
            data = self._feedback(unit_id, turn_id, attempt)
            self.executor.update_feedback(self.run_id, unit_id, turn_id, data)

    def _resync(self) -> None:
        """After a failed append (disk full, I/O error, a racing writer) or a
        failed ``handle`` the kernel has folded decisions the log never got. Rebuild it from the
        log, so the ``KernelFailed`` that follows is decided on what was
        recorded (and replays), not on a state no one will ever see again."""
        self._unflushed, self._unflushed_seen = [], []  # never appended: the refold below does not hold them
        forget = getattr(self.turn_hooks, "forget", None)
        if forget is not None:
            forget()  # the writer tokens' fold may hold what was not appended either
        k = self.kernel.fresh()
        try:
            fold_log(self.log, k)
        except Exception:  # the log cannot even be read: record nothing more (an empty kernel knows no run)  # noqa: BLE001
            k = self.kernel.fresh()
        self.kernel = k

    # -------------------------------------------------------------- helpers

    def settled_units(self) -> int:
        """How many of the plan's units are final (for progress displays)."""
        return self.kernel.settled_units()

    def unit_tally(self) -> tuple[int, int]:
        """Units of the plan completed, and ended otherwise (for progress displays)."""
        return self.kernel.unit_tally()

    def _probe_open_runs(self, plan_id: str) -> tuple[ev.PidProbe, ...]:
        probes = []
        host = socket.gethostname()
        for run in self.kernel.open_runs():
            alive = pid_alive(run.pid) and run.pid != os.getpid()
            if alive and run.plan_id == plan_id:
                raise UsageError(
                    f"run {run.run_id} (pid {run.pid} on {run.host or host}) is still running plan {plan_id!r}; "
                    "wait for it, or stop it, before starting another"
                )
            probes.append(ev.PidProbe(run_id=run.run_id, pid=run.pid, alive=alive))
        # what the dead runs left running ends before their units run again (uok.adapters.orphans)
        ended = end_leftovers([p.run_id for p in probes if not p.alive])
        return tuple(msgspec.structs.replace(p, ended=ended.get(p.run_id, 0)) if not p.alive else p for p in probes)

    def _install_signal_handlers(self) -> Callable[[], None]:
        return on_stop_signals(
            lambda signum: self._results.put(
                ev.SignalReceived(run_id=self.run_id, at=self.clock(), signal=signal.Signals(signum).name)
            )
        )
