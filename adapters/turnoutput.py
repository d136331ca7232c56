"""Finding a turn's kept output from the log (what ``uok logs`` shows).

Each turn that ran a command left two files (:mod:`uok.adapters.turnlogs`)
whose size and SHA-256 its ``ExecutionFinished`` records; a stream the
task never wrote to has no file (recorded as 0 bytes), shown as empty. :func:`turns`
lists the turns of the log with their output; :func:`select` picks those a
``uok logs`` argument names: a run id (every turn of that run), a turn id,
or a unit id (its latest attempt, or ``--attempt N``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
from uok.adapters.turnlogs import LogsDir
from uok.domain import events as ev
from uok.domain.errors import InputError
from uok.domain.log import codec

_TOPICS = tuple(
    f"{cls.__name__}/v{v}"
    for cls in (ev.KernelEntered, ev.PlanCompiled, ev.TurnStarted, ev.ExecutionFinished, ev.KernelExited)
    for v in range(1, cls.VERSION + 1)
)


class TurnOutput(msgspec.Struct, kw_only=True):
    """One turn and where its output is."""

    run_id: str
    plan_id: str
    unit_id: str
    turn_id: str
    attempt: int
    stdout: Path
    stderr: Path
    stdout_log: ev.OutputLog | None = None  # None until the turn's ExecutionFinished
    stderr_log: ev.OutputLog | None = None
    finished: bool = False  # the ExecutionFinished is recorded (or the run ended without one)

    def stream(self, stderr: bool) -> tuple[Path, ev.OutputLog | None]:
        return (self.stderr, self.stderr_log) if stderr else (self.stdout, self.stdout_log)


def turns(log, logs: LogsDir, *, after: int = 0) -> list[TurnOutput]:
    """Every turn that ran (or runs) a command, in log order."""
    plan_of: dict[str, str] = {}
    logs_of: dict[str, LogsDir] = {}
    found: dict[str, TurnOutput] = {}
    for r in log.store.read(after, topics=_TOPICS):
        e = codec.decode(r.topic, r.payload)
        if isinstance(e, ev.KernelEntered) and logs.base is None:  # a PostgreSQL log: beside the run's plan
            logs_of[e.run_id] = LogsDir.for_store(log.store, plan_dir=Path(e.plan_path).absolute().parent)
        elif isinstance(e, ev.PlanCompiled):
            plan_of[e.run_id] = e.plan_id
        elif isinstance(e, ev.TurnStarted):
            files = logs_of.get(e.run_id, logs).turn(e.run_id, e.unit_id, e.turn_id)
            found[e.turn_id] = TurnOutput(
                run_id=e.run_id,
                plan_id=plan_of.get(e.run_id, ""),
                unit_id=e.unit_id,
                turn_id=e.turn_id,
                attempt=e.attempt,
                stdout=files.stdout,
                stderr=files.stderr,
            )
        elif isinstance(e, ev.ExecutionFinished) and e.turn_id in found:
            t = found[e.turn_id]
            t.finished = True
            t.stdout_log, t.stderr_log = e.stdout_log, e.stderr_log
            if e.stdout_log is not None:
                t.stdout = logs.resolve(e.stdout_log.path)
            if e.stderr_log is not None:
                t.stderr = logs.resolve(e.stderr_log.path)
        elif isinstance(e, ev.KernelExited):
            for t in found.values():
                if t.run_id == e.run_id:
                    t.finished = True  # whatever was not reported never will be
    return [t for t in found.values() if t.stdout.exists() or t.stdout_log is not None or not t.finished]


def select(all_turns: list[TurnOutput], what: str, *, attempt: int | None = None, plan: str | None = None):
    """The turns ``what`` names: a run id, a turn id or a unit id.

    A run id gives all its turns (``attempt`` narrows them to that attempt);
    a unit id gives its latest turn, or its latest turn with that attempt."""
    pool = [t for t in all_turns if plan is None or t.plan_id == plan]
    of_run = [t for t in pool if t.run_id == what]
    if of_run:
        return [t for t in of_run if attempt is None or t.attempt == attempt]
    by_turn = [t for t in pool if t.turn_id == what]
    if by_turn:
        return by_turn
    of_unit = [t for t in pool if t.unit_id == what]
    if not of_unit:
        raise InputError(f"no run, turn or unit {what!r} with output in this log (`uok status` lists them)")
    plans = sorted({t.plan_id for t in of_unit})
    if len(plans) > 1:
        raise InputError(f"unit {what!r} is in plans {', '.join(plans)}: say which with --plan")
    if attempt is not None:
        of_unit = [t for t in of_unit if t.attempt == attempt]
        if not of_unit:
            raise InputError(f"unit {what!r} has no attempt {attempt} with output")
    return of_unit[-1:]


def verify(path: Path, recorded: ev.OutputLog) -> str:
    """'' if the file is exactly what the event recorded, else what is wrong."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        if recorded.size == 0:
            return ""  # a stream the task never wrote to leaves no file (uok.adapters.outputsink)
        return f"{path}: cannot read: {exc.strerror or exc}"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if size != recorded.size:
        return f"{path}: {size} bytes, the log recorded {recorded.size}"
    h = hashlib.sha256()
    for chunk in read_chunks(path):
        h.update(chunk)
    if h.hexdigest() != recorded.sha256:
        return f"{path}: SHA-256 {h.hexdigest()} differs from the recorded {recorded.sha256}"
    return ""


def read_chunks(path: Path, start: int = 0, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(size):
            yield chunk
