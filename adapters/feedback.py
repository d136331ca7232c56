"""The feedback file: what a task learns from the attempts before it.

Before each turn the runner writes a JSON file and names it in the task's
``UOK_FEEDBACK_FILE``. Schema (version 1; fields are only ever added)::

    {
      "schema": 1,
      "plan_id": "p", "run_id": "r…", "unit_id": "build", "turn_id": "r…:7", "attempt": 2,
      "previous_attempts": [            # this unit's earlier turns, oldest first (at most 5)
        {
          "run_id": "r…", "turn_id": "r…:3", "attempt": 1,
          "status": "retry",            # the turn's end: completed | retry | failed | stopped
          "failure_class": "execution", # none | execution | timeout | verification | config | …
          "reason": "exit code 1: ImportError: no module named foo",
          "exit_code": 1, "timed_out": false, "duration_ms": 5312,
          "stop": null,                 # or {"reason": "timeout", "signals": ["SIGTERM"], "grace_s": 10.0}
          "gates": [{"gate_id": "verification", "attempt": 1, "outcome": "fail",
                     "failure_class": "verification", "rationale": "2 tests failed: …"}],
          "stdout_tail": "…", "stderr_tail": "…",   # the last 4 KiB, redacted
          "stdout_log": "/abs/.uok/logs/r…/build.3.stdout", "stderr_log": "…",  # the whole output (no file: empty)
          "agent": null                 # an agent task: how it ended (docs/agents.md), e.g.
                                        # {"agent": "claude-code", "session_id": "…", "subtype": "error_max_turns", …}
        }
      ],
      "requeued": {                     # why this unit is queued again, or null (issue 12)
        "cause": "retry",               # retry (uok retry) | rerun | amended | dependency
        "was": "failed", "reason": "flaky network, fixed", "by": "ann@host", "run_id": "r…",
        "dependency": "", "old_fingerprint": "", "new_fingerprint": ""
      },
      "notes": [                        # the operator's notes for this unit or its plan's runs
        {"at": "2026-…Z", "from": "operator", "run_id": "r…", "unit_id": "build",
         "text": "use the v2 API", "message_id": "…"}
      ]
    }

``unit_id`` of a note is ``""`` for a note to the whole run. The task's
environment carries the last earlier attempt in brief
(:func:`previous_attempt_env`): ``UOK_PREVIOUS_STATUS``,
``UOK_PREVIOUS_FAILURE_CLASS`` and ``UOK_PREVIOUS_REASON``. A note sent
while the task runs (``uok steer RUN note --unit U TEXT``) is written into
the running task's file at once (the file is replaced atomically): a task
may poll it.

:class:`FeedbackIndex` is a fold of the log that remembers *positions*, not
payloads (a long plan's history would not fit in memory otherwise): when a
file is written, the few events it needs are read back by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from uok.adapters.turnlogs import LogsDir
from uok.domain import events as ev
from uok.domain.log import codec

SCHEMA = 1
MAX_ATTEMPTS = 5
MAX_NOTES = 50
MAX_RATIONALE = 2000

_FOLDED = (
    ev.PlanCompiled,
    ev.TurnStarted,
    ev.ExecutionFinished,
    ev.GateRun,
    ev.TurnFinished,
    ev.MessageSent,
    ev.UnitRequeued,
)
TOPICS = tuple(f"{cls.__name__}/v{v}" for cls in _FOLDED for v in range(1, cls.VERSION + 1))
_FOLDED_TYPES = frozenset(_FOLDED)


class _Turn(msgspec.Struct, kw_only=True):
    """Positions of one turn's events (payloads are read back when needed)."""

    plan_id: str
    unit_id: str
    turn_id: str
    attempt: int
    run_id: str
    execution: int = 0
    gates: list[int] = msgspec.field(default_factory=list)
    finished: int = 0


class FeedbackIndex:
    """Which events each unit's feedback needs, by position."""

    def __init__(self, log: Any, logs: LogsDir):
        self.log, self.logs = log, logs
        self.position = 0
        self._plan_of_run: dict[str, str] = {}
        self._turns: dict[str, _Turn] = {}  # turn id -> its positions
        self._of_unit: dict[tuple[str, str], list[str]] = {}  # (plan, unit) -> its turn ids, in order
        self._notes: dict[str, list[int]] = {}  # plan id -> positions of its notes
        self._requeued: dict[tuple[str, str], int] = {}  # (plan, unit) -> position of its last UnitRequeued
        self._mark: tuple[int, int] | None = None  # the store's appended_mark at the last catch_up
        self._handed: list[tuple[int, ev.Event]] = []  # appended by this process since, with positions

    # ------------------------------------------------------------------ folding

    def appended(self, positions: Sequence[int], events: Sequence[ev.Event]) -> None:
        """Events this process has just appended, at ``positions`` (the runner
        hands over each append): the next :meth:`catch_up` folds them without
        reading them back, when nothing else of its topics can have been
        appended since (issue 15)."""
        for position, e in zip(positions, events, strict=True):
            if type(e) in _FOLDED_TYPES:
                self._handed.append((position, e))

    def catch_up(self) -> None:
        """Fold what was appended since the last call (by any process).

        On SQLite, when :meth:`SqliteEventStore.appended_mark` says that no
        other connection committed and this one appended exactly the events
        of these topics it was handed (:meth:`appended`), those are all there
        is to fold: nothing is read. Otherwise the log is read after the
        last position folded, as always."""
        marker = getattr(self.log.store, "appended_mark", None)
        mark = marker(TOPICS) if marker is not None else None
        handed, self._handed = self._handed, []
        last, self._mark = self._mark, mark
        if mark is not None and last is not None and mark[0] == last[0] and mark[1] - last[1] == len(handed):
            for position, e in handed:
                if position > self.position:
                    self._fold(position, e)
                    self.position = position
            return
        for r in self.log.store.read(self.position, topics=TOPICS):
            self.position = r.position
            self._fold(r.position, codec.decode(r.topic, r.payload))
        head = self.log.store.head()[0]
        self.position = max(self.position, head)

    def _fold(self, position: int, e: ev.Event) -> None:
        if isinstance(e, ev.PlanCompiled):
            self._plan_of_run[e.run_id] = e.plan_id
        elif isinstance(e, ev.TurnStarted):
            plan = self._plan_of_run.get(e.run_id, "")
            self._turns[e.turn_id] = _Turn(
                plan_id=plan, unit_id=e.unit_id, turn_id=e.turn_id, attempt=e.attempt, run_id=e.run_id
            )
            turns = self._of_unit.setdefault((plan, e.unit_id), [])
            turns.append(e.turn_id)
            del turns[: -MAX_ATTEMPTS - 1]  # the current one and the MAX_ATTEMPTS before it
        elif isinstance(e, ev.ExecutionFinished | ev.GateRun | ev.TurnFinished):
            t = self._turns.get(e.turn_id)
            if t is None:
                return
            if isinstance(e, ev.ExecutionFinished):
                t.execution = position
            elif isinstance(e, ev.GateRun):
                t.gates.append(position)
            else:
                t.finished = position
        elif isinstance(e, ev.UnitRequeued):
            self._requeued[(e.plan_id, e.unit_id)] = position
        elif isinstance(e, ev.MessageSent) and e.topic == ev.STEER_TOPIC and e.recipient.startswith("kernel:"):
            command, _ = ev.parse_payload(e.payload)
            plan = self._plan_of_run.get(e.recipient.removeprefix("kernel:"), "")
            if command == "note" and plan:
                notes = self._notes.setdefault(plan, [])
                notes.append(position)
                del notes[:-MAX_NOTES]

    # ------------------------------------------------------------------ the file

    def feedback(self, *, plan_id: str, run_id: str, unit_id: str, turn_id: str, attempt: int) -> dict[str, Any]:
        """The feedback of a turn about to run (see the module docstring)."""
        self.catch_up()
        earlier = [t for t in self._of_unit.get((plan_id, unit_id), []) if t != turn_id][-MAX_ATTEMPTS:]
        return {
            "schema": SCHEMA,
            "plan_id": plan_id,
            "run_id": run_id,
            "unit_id": unit_id,
            "turn_id": turn_id,
            "attempt": attempt,
            "previous_attempts": [self._attempt(self._turns[t]) for t in earlier],
            "requeued": self._requeue_of(plan_id, unit_id, earlier),
            "notes": self._notes_for(plan_id, unit_id),
        }

    def _requeue_of(self, plan_id: str, unit_id: str, earlier: list[str]) -> dict[str, Any] | None:
        """The unit's last re-queue, unless it ran since (then it is history)."""
        e = self._event(self._requeued.get((plan_id, unit_id), 0))
        if not isinstance(e, ev.UnitRequeued):
            return None
        last = self._turns[earlier[-1]] if earlier else None
        if last is not None and last.run_id == e.run_id:  # a turn of the re-queueing run came after it
            return None
        return {
            "cause": e.cause,
            "was": e.was,
            "reason": e.reason,
            "by": e.by,
            "run_id": e.run_id,
            "dependency": e.dependency,
            "old_fingerprint": e.old_fingerprint,
            "new_fingerprint": e.new_fingerprint,
        }

    def _event(self, position: int) -> ev.Event | None:
        if not position:
            return None
        for r in self.log.store.read(position - 1, upto=position):
            return codec.decode(r.topic, r.payload)
        return None

    def _attempt(self, t: _Turn) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": t.run_id,
            "turn_id": t.turn_id,
            "attempt": t.attempt,
            "status": "",
            "failure_class": "",
            "reason": "",
            "exit_code": None,
            "timed_out": False,
            "duration_ms": None,
            "stop": None,
            "gates": [],
            "stdout_tail": "",
            "stderr_tail": "",
            "stdout_log": None,
            "stderr_log": None,
            "agent": None,
        }
        fin = self._event(t.finished)
        if isinstance(fin, ev.TurnFinished):
            out.update(status=fin.status, failure_class=fin.failure_class, reason=fin.error)
        ex = self._event(t.execution)
        if isinstance(ex, ev.ExecutionFinished):
            out.update(
                exit_code=ex.exit_code,
                timed_out=ex.timed_out,
                duration_ms=ex.duration_ms,
                stop=msgspec.to_builtins(ex.stop) if ex.stop is not None else None,
                stdout_tail=ex.stdout_tail,
                stderr_tail=ex.stderr_tail,
                stdout_log=str(self.logs.resolve(ex.stdout_log.path)) if ex.stdout_log else None,
                stderr_log=str(self.logs.resolve(ex.stderr_log.path)) if ex.stderr_log else None,
                agent=msgspec.to_builtins(ex.agent) if ex.agent is not None else None,
            )
            if not out["reason"] and ex.error:
                out["reason"] = ex.error
        out["gates"] = [g for g in (self._gate(p) for p in t.gates) if g is not None]
        return out

    def _gate(self, position: int) -> dict[str, Any] | None:
        g = self._event(position)
        if not isinstance(g, ev.GateRun):
            return None
        return {
            "gate_id": g.gate_id,
            "attempt": g.attempt,
            "outcome": g.outcome,
            "failure_class": g.failure_class,
            "rationale": g.rationale[:MAX_RATIONALE],
        }

    def _notes_for(self, plan_id: str, unit_id: str) -> list[dict[str, Any]]:
        out = []
        for position in self._notes.get(plan_id, ()):
            m = self._event(position)
            if not isinstance(m, ev.MessageSent):
                continue
            target = m.payload.get("unit", "")
            target = target if isinstance(target, str) else ""
            if target and target != unit_id:
                continue
            _, text = ev.parse_payload(m.payload)
            out.append(
                {
                    "at": m.at.isoformat(),
                    "from": m.sender,
                    "run_id": m.recipient.removeprefix("kernel:"),
                    "unit_id": target,
                    "text": text,
                    "message_id": m.message_id,
                }
            )
        return out


def previous_attempt_env(feedback: Mapping[str, Any]) -> dict[str, str]:
    """The last earlier attempt, in brief, for the task's environment: a
    task that reads no file still learns why it is running again."""
    previous = feedback.get("previous_attempts") or []
    if not previous:
        return {}
    last = previous[-1]
    return {
        "UOK_PREVIOUS_STATUS": str(last.get("status") or ""),
        "UOK_PREVIOUS_FAILURE_CLASS": str(last.get("failure_class") or ""),
        "UOK_PREVIOUS_REASON": str(last.get("reason") or "")[:MAX_RATIONALE],
    }
