"""Runs a unit's command as a subprocess: the kernel's only hands.

What a task sees (the full contract is docs/tasks.md):

* its argv run without a shell (a shell only when the plan says
  ``shell = true``), with cwd = the plan's directory (or the task's ``cwd``
  below it) and the task's ``env`` added;
* ``UOK_DB``: the event log the run records into (a path or a URL), so
  ``uok bus``, ``uok progress`` and every other ``uok`` command the task
  runs use the run's own log; ``UOK_RUN_ID``, ``UOK_PLAN_ID``,
  ``UOK_UNIT_ID``, ``UOK_TURN_ID``, ``UOK_ATTEMPT``;
* ``UOK_FEEDBACK_FILE``: a JSON file saying what earlier attempts of this
  unit left (failure class, reason, gate results, output tails) and the
  operator's notes (schema: :mod:`uok.adapters.feedback`); it is rewritten
  when a note for the unit arrives while the task runs;
* ``TRACEPARENT``: W3C trace context naming the run's trace and this
  execution's span (ids derived from the run and turn ids, see
  :mod:`uok.adapters.otel.ids`), so an agent's own OpenTelemetry spans join
  the trace ``uok trace`` exports;
* ``UOK_SPAWN_FILE``: where the task may append sub-agent requests, one
  JSON object per line (see :mod:`uok.adapters.spawnfile`), and
  ``UOK_WORK_MODE`` / ``UOK_MODEL_MODE`` / ``UOK_PERMISSION_PROFILE`` when
  the unit's metadata sets them (always, for sub-agents);
* ``UOK_PROMPT_FILE``: for a task written as a Markdown file, a file
  holding its body (the task's prompt, :mod:`uok.domain.plan.taskfiles`);
* for an agent task (``agent = "..."``, docs/agents.md): the command line
  its adapter builds, the prompt (``prompt``, else the Markdown body) on
  stdin and in ``UOK_PROMPT_FILE``, ``UOK_AGENT`` and ``UOK_MODEL``; its stdout is read
  as it streams into ``AgentStep`` events (:mod:`uok.adapters.agents.stream`)
  and how it ended rides on the outcome (``agent``);
* ``UOK_USAGE_FILE``: a path where the task may append one JSON object per
  line to report model usage, e.g.
  ``{"model": "claude-sonnet-4-6", "input_tokens": 1200, "output_tokens": 300}``.
  Malformed lines are ignored; the cost guard prices what is reported.

Its stdout and stderr are streamed to files (:mod:`uok.adapters.turnlogs`),
redacted as they are written (:mod:`uok.adapters.outputsink`); the runner's
memory does not grow with the output. Their size and SHA-256 ride on the
``ExecutionFinished`` observation, with the last 4 KiB of each.

The child runs in its own process group (``Popen(process_group=0)``,
:mod:`uok.adapters.childproc`) so a
timeout or a cancel reaches the whole tree, gracefully (``SIGTERM``, a
grace period, ``SIGKILL``: see :mod:`uok.adapters.taskprocess`). The spawn
is CPython's fast path (no ``preexec_fn``, which forced a full ``fork`` of
the kernel's process: issue 15), so nothing ties a task's life to the
kernel's: what a ``kill -9`` of ``uok run`` leaves running is ended by the
next start before anything runs again (:mod:`uok.adapters.orphans`, which
finds it by the ``UOK_RUN_ID`` of its environment). The usage and spawn
files sit beside the turn's other files (no temporary directory per
attempt) and are removed once read.

This module builds a task's environment and files, starts its process and
stops it; the turn from its start to its outcome (pumping, the
:class:`ExecutionOutcome`, closing on every way out) is a
:class:`~uok.adapters.execution.RunningTurn`, re-exported here.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
from uok.adapters import childproc
from uok.adapters.agents import adapter_for
from uok.adapters.agents.base import last_session, remaining_budget
from uok.adapters.agents.stream import AgentStream, BlobStore
from uok.adapters.execution import CANNOT_START, ExecutionOutcome, RunningTurn, Started
from uok.adapters.feedback import previous_attempt_env
from uok.adapters.otel.ids import traceparent
from uok.adapters.outputsink import TAIL_BYTES, OutputSink
from uok.adapters.pump import Pump, UsageWatch
from uok.adapters.spawnfile import mode_env
from uok.adapters.taskprocess import TaskProcess
from uok.adapters.turnlogs import LogsDir, TurnFiles, files_at
from uok.domain.config import TaskSettings
from uok.domain.events import ModelUsage, StopRecord
from uok.domain.plan import UnitNode
from uok.domain.policies.modes import route_model

__all__ = ["TAIL_BYTES", "CommandExecutor", "ExecutionOutcome", "RunningTurn", "Started", "read_usage"]


def read_usage(path: Path, model: str = "") -> tuple[ModelUsage, ...]:
    """The usage file a task wrote, in any shape :mod:`uok.adapters.usage`
    reads; an unreadable line is kept as a row with ``error`` (never skipped).
    A line naming no model is usage of ``model``, the one the task was handed."""
    from uok.adapters.usage import read_usage_file

    return read_usage_file(path, default_model=model)


def routed(node: UnitNode, models: Mapping[str, str]) -> tuple[UnitNode, str]:
    """The model a unit runs with (behaviour §5): the task's own choice
    (``UOK_MODEL`` in its env, an agent's ``model``) wins; otherwise the
    routing table's model for the unit's effective model mode (its metadata,
    which the runner fills in with the run's current modes). An agent task
    without a model gets the routed one on its command line."""
    explicit = node.env.get("UOK_MODEL") or (node.agent.model if node.agent is not None else "")
    if explicit:
        return node, explicit
    mode = node.metadata.get("model_mode")
    model = route_model(mode, models) if isinstance(mode, str) else ""
    if model and node.agent is not None:
        node = msgspec.structs.replace(node, agent=msgspec.structs.replace(node.agent, model=model))
    return node, model


class CommandExecutor:
    """Executes units; one instance serves all worker threads of a run.

    ``logs``: where turns' files go (default: a temporary directory, for a
    bare executor); ``db``: the log target tasks are told about (``UOK_DB``);
    ``tasks``: the run's ``[uok.tasks]`` settings (grace period, heartbeat);
    ``models``: the routing table (``[uok.models]``, model mode -> model)."""

    def __init__(
        self,
        root: Path,
        *,
        redact: Callable[[str], str] | None = None,
        env: dict[str, str] | None = None,
        logs: LogsDir | None = None,
        db: str = "",
        plan_id: str = "",
        tasks: TaskSettings | None = None,
        models: Mapping[str, str] | None = None,
    ):
        self.root = Path(root)
        self._root = str(self.root)  # what Popen's cwd is made of, once
        self.models = dict(models or {})
        self.redact = redact or (lambda s: s)
        self.base_env = os.environ if env is None else env  # encoded once (childproc.Environment)
        self.logs = logs or LogsDir(Path(tempfile.mkdtemp(prefix="uok-logs-")))
        self.db, self.plan_id = db, plan_id
        self.tasks = tasks or TaskSettings()
        self._tasks: dict[str, TaskProcess] = {}
        self._stopped: dict[str, str] = {}  # turn id -> why, for a stop asked before the process started
        self._lock = threading.Lock()

    @property
    def base_env(self) -> Mapping[str, str]:
        """The environment every task starts from (read-only; set it anew to change it)."""
        return self._env.mapping

    @base_env.setter
    def base_env(self, env: Mapping[str, str]) -> None:
        self._env = childproc.Environment(env)

    # ------------------------------------------------------------------ running

    def files(self, run_id: str, unit_id: str, turn_id: str) -> TurnFiles:
        return self.logs.turn(run_id, unit_id, turn_id)

    def execute(
        self,
        node: UnitNode,
        *,
        run_id: str,
        turn_id: str,
        attempt: int,
        feedback: Mapping[str, Any] | None = None,
        on_start: Callable[[Started], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_usage: Callable[[tuple[ModelUsage, ...]], None] | None = None,
    ) -> ExecutionOutcome:
        """Run the unit's command to completion (or until it is stopped); never raises.

        ``feedback`` is written to the feedback file before the task starts;
        ``on_start`` hears of the process as soon as it exists; ``on_progress``
        receives each line the task appends to its progress file; ``on_step``
        each step of an agent task's stream as it arrives."""
        turn = self.begin(
            node,
            run_id=run_id,
            turn_id=turn_id,
            attempt=attempt,
            feedback=feedback,
            on_start=on_start,
            on_progress=on_progress,
            on_step=on_step,
            on_usage=on_usage,
        )
        turn.pump()
        return turn.finish()

    def begin(
        self,
        node: UnitNode,
        *,
        run_id: str,
        turn_id: str,
        attempt: int,
        feedback: Mapping[str, Any] | None = None,
        on_start: Callable[[Started], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_usage: Callable[[tuple[ModelUsage, ...]], None] | None = None,
    ) -> RunningTurn:
        """Start the unit's command (:meth:`execute` without the wait): the
        turn's files written, its process started (or why not). The caller
        pumps the returned turn (:meth:`RunningTurn.pump`, from any one
        thread at a time) and then takes its outcome (:meth:`RunningTurn.finish`)."""
        assert node.command is not None or node.agent is not None
        started = time.monotonic()
        node, model = routed(node, self.models)
        self.logs.prepare(run_id)
        stem = self.logs.stem(run_id, node.id, turn_id)  # the turn's files as strings: no Path per task
        feedback_file, progress_file = stem + ".feedback.json", stem + ".progress"
        _write_json(feedback_file, feedback or {}, atomic=False)  # no task reads it yet
        usage_file = stem + ".usage.jsonl"  # beside the turn's files: no temporary
        spawn_file = stem + ".spawn.jsonl"  # directory per attempt (issue 15)
        turn = RunningTurn(self, turn_id, started, model, usage_file, spawn_file)
        try:
            env = {  # over the base environment (self._env), encoded once
                **node.env,
                "UOK_RUN_ID": run_id,
                "UOK_PLAN_ID": self.plan_id,
                "UOK_UNIT_ID": node.id,
                "UOK_TURN_ID": turn_id,
                "UOK_ATTEMPT": str(attempt),
                "UOK_FEEDBACK_FILE": feedback_file,
                "UOK_PROGRESS_FILE": progress_file,  # one line per report: the unit enters progress
                "UOK_USAGE_FILE": usage_file,
                **budget_env(feedback),  # what the cost guard still allows (uok.domain.policies.cost_guard)
                "UOK_SPAWN_FILE": spawn_file,  # sub-agent requests (uok.adapters.spawnfile)
                "TRACEPARENT": traceparent(run_id, turn_id),  # the turn's execution span (uok.adapters.otel.ids)
                **mode_env(node),
            }
            if model:
                env["UOK_MODEL"] = model
            if self.db:
                env["UOK_DB"] = self.db
            env.update(previous_attempt_env(feedback or {}))  # the last attempt's failure, in brief
            prompt_text = (node.agent.prompt or node.body) if node.agent is not None else node.body
            prompt: str | None = None
            if prompt_text or node.agent is not None:  # a Markdown task's body, an agent's prompt
                prompt = stem + ".prompt.md"
                Path(prompt).write_text(prompt_text, encoding="utf-8")
                env["UOK_PROMPT_FILE"] = prompt
            sink = OutputSink(stem + ".stdout", self.redact)
            turn.out = sink
            turn.err = OutputSink(stem + ".stderr", self.redact)
            argv: str | list[str] = node.command[0] if node.shell and node.command else list(node.command or ())
            stdin: str | None = None
            if node.agent is not None:
                adapter = adapter_for(node.agent)
                adapter.budget = remaining_budget(feedback)
                previous = last_session(feedback)
                if previous:
                    env["UOK_PREVIOUS_SESSION_ID"] = previous  # any agent may resume it itself
                    if node.agent.options.get("resume_on_retry") is True:
                        adapter.resume = previous
                stdin = prompt  # the agent reads its prompt on stdin
                env.update(UOK_AGENT=node.agent.name, UOK_MODEL=node.agent.model)
                argv = argv if node.shell else adapter.argv(node)
                turn.out = AgentStream(
                    sink, adapter, redact=self.redact, blobs=BlobStore(self.logs.blobs), on_step=on_step
                )
            turn.watch = UsageWatch(
                usage_file, on_usage, model
            )  # usage read while the task runs (the cost guard's live view)
            self._start(turn, node, env, on_start, on_progress, stem, argv=argv, stdin=stdin)
        except BaseException:
            turn.abandon()
            raise
        return turn

    def _start(self, turn: RunningTurn, node, env, on_start, on_progress, stem: str, *, argv, stdin) -> None:
        """Start the task's process (:func:`uok.adapters.childproc.start`) and
        set up its pump, which owns the pipes' read ends (or record why it
        did not start)."""
        cwd = os.path.join(self._root, node.cwd) if node.cwd else self._root
        with self._lock:
            stopped_before = self._stopped.pop(turn.turn_id, None)
        if stopped_before is not None:
            turn.result = None, f"not started: {stopped_before}", False, StopRecord(reason=stopped_before)
            return
        try:
            proc, out_r, err_r = childproc.start(argv, shell=node.shell, cwd=cwd, env=self._env, extra=env, stdin=stdin)
        except OSError as exc:
            shown = argv if isinstance(argv, str) else argv[0]
            turn.result = None, f"{CANNOT_START}{shown!r}: {exc.strerror or exc}", False, None
            return
        grace = node.grace if node.grace is not None else self.tasks.grace_seconds
        heartbeat = node.heartbeat if node.heartbeat is not None else self.tasks.heartbeat_seconds
        task = TaskProcess(proc, grace)
        with self._lock:
            self._tasks[turn.turn_id] = task
            late_stop = self._stopped.pop(turn.turn_id, None)
        turn.task = task
        if late_stop is not None:
            task.stop(late_stop)
        out, err = turn.out, turn.err
        assert out is not None and err is not None
        turn.pumped = Pump(
            proc, task, (out_r, out), (err_r, err), node.timeout, heartbeat, stem + ".progress", on_progress, turn.watch
        )  # it owns the pipes' read ends from here
        if on_start is not None:
            on_start(Started(turn.turn_id, node.id, proc.pid, task.pgid, files_at(stem)))

    # ------------------------------------------------------------------ stopping

    def stop(self, turn_id: str, reason: str = "cancel", *, grace: float | None = None) -> None:
        """Stop a running turn gracefully: ``SIGTERM`` to its process group,
        ``SIGKILL`` after the grace period (the task's, else the run's). A
        second call kills at once. A turn whose process has not started yet
        never starts. Returns at once; the turn's ``ExecutionFinished``
        reports the stop when the process is gone."""
        with self._lock:
            task = self._tasks.get(turn_id)
            if task is None:
                self._stopped[turn_id] = reason
        if task is not None:
            task.stop(reason, grace=grace)

    def cancel(self, turn_id: str) -> None:
        """An operator's (or the kernel's) cancel of one turn: a graceful stop."""
        self.stop(turn_id, "cancel")

    def stop_all(self, reason: str = "shutdown") -> None:
        """Stop every running turn gracefully (a second call: at once)."""
        with self._lock:
            turns = list(self._tasks)
        for turn_id in turns:
            self.stop(turn_id, reason)

    def cancel_all(self) -> None:
        self.stop_all("shutdown")

    def kill_all(self) -> None:
        """Kill every running turn now (the runner is going down)."""
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            task.kill("shutdown")

    def update_feedback(self, run_id: str, unit_id: str, turn_id: str, feedback: Mapping[str, Any]) -> None:
        """Replace a running turn's feedback file (a note arrived for it)."""
        if self.running(turn_id):
            _write_json(self.files(run_id, unit_id, turn_id).feedback, feedback)

    def running(self, turn_id: str) -> bool:
        with self._lock:
            return turn_id in self._tasks

    def running_turns(self) -> list[str]:
        with self._lock:
            return list(self._tasks)


def budget_env(feedback: Mapping[str, Any] | None) -> dict[str, str]:
    """``UOK_BUDGET_USD`` (the unit's remaining spend) and
    ``UOK_BUDGET_WINDOW_USD`` (the rolling window's), from the feedback's ``budget``."""
    budget = (feedback or {}).get("budget") or {}
    out = {}
    for key, var in (("unit_remaining_usd", "UOK_BUDGET_USD"), ("window_remaining_usd", "UOK_BUDGET_WINDOW_USD")):
        if isinstance(budget.get(key), int | float):
            out[var] = f"{max(float(budget[key]), 0.0):.6f}"
    return out


def _write_json(path: str | Path, data: Mapping[str, Any], *, atomic: bool = True) -> None:
    """Write atomically: a task polling the file never reads half of it.
    ``atomic=False``: the turn's first write, before its task starts (a
    fresh file no one reads yet: no temporary file and rename)."""
    text = msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"
    if not atomic:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text)
    os.replace(tmp, path)
