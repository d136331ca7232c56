"""Gate contracts (behaviour §4) and the pure retry matrix (behaviour §2).

A *gate* is a check that runs after a unit's command succeeded and decides
whether the unit's work may stand: run the tests, scan for secrets, and so
on. Gates execute in the shell (they touch files and processes); what the
domain owns is the vocabulary and the rules:

* :class:`GateContext` is what a gate is told (which turn, which unit, which
  files, its options); :class:`GateResult` is what it answers;
* :class:`Gate` is the protocol every executable gate satisfies and
  :func:`validate_gate` rejects registration mistakes early, with a message
  that says what is wrong, instead of failing mid-run;
* :data:`RETRY_MATRIX` is the table of extra attempts per failure class and
  :func:`judge` applies it to one attempt, deterministically, so a replay
  re-derives the same ``retry``/final decisions;
* :func:`fingerprint` is the stable key under which failures of the same
  kind are remembered (memory enrichment): the gate id, the failure class
  and the rationale with its volatile parts (numbers, hex ids, paths)
  normalised away.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import msgspec
from uok.domain.errors import InputError
from uok.domain.events import FailureClass, Finding, GateOutcome
from uok.domain.plan import GateSpec  # noqa: F401  (defined beside the plan, re-exported here)

EvaluatedOutcome = Literal["pass", "fail", "skip", "manual-attention"]

RETRY_MATRIX: dict[FailureClass, int] = {
    "none": 0,
    "policy": 0,
    "input": 0,
    "manual-attention": 0,
    "unknown": 0,
    "execution": 1,
    "artifact": 1,
    "verification": 1,
    "closeout": 1,
    "git": 1,
    "timeout": 2,
    "config": 0,
}
"""Extra attempts allowed per failure class. Anything not listed gets 0:
an unfamiliar class is treated like ``unknown``, never as retryable."""

NO_UNIT_RETRY = frozenset({"policy", "config"})
"""Failure classes after which the *unit* is not re-queued either: a policy
verdict (open breaker, cost ceiling, a secret in the output) will not
change by running the same work again, nor will a command that cannot
start (``config``: fix the plan, then ``uok run`` or ``uok retry``)."""


FAILURE_CLASSES: dict[str, FailureClass] = {c: c for c in get_args(FailureClass)}
"""The vocabulary of failure classes (behaviour §4), by name."""


def failure_class_of(name: str) -> FailureClass:
    """``name`` as a failure class; ``unknown`` if it is not one."""
    return FAILURE_CLASSES.get(name, "unknown")


def retry_budget(failure_class: str) -> int:
    """Extra attempts for a failure class (0 for unknown classes)."""
    return RETRY_MATRIX[failure_class_of(failure_class)]


class GateContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a gate is told about the turn it checks. Plain data: a gate may
    not reach into the kernel, and the same context can be logged or
    re-created for a replayed diagnosis."""

    run_id: str
    turn_id: str
    unit_id: str
    gate_id: str
    unit_type: str = "execute-task"
    plan_id: str = ""
    milestone: str = ""
    slice: str = ""
    base_path: str = "."  # the plan root; unit paths are relative to it
    cwd: str | None = None  # the task's cwd, relative to base_path
    writes: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    shell: bool = False
    timeout: float | None = None
    files: tuple[str, ...] = ()
    env: dict[str, str] = {}
    options: dict[str, Any] = {}


class GateResult(msgspec.Struct, frozen=True, kw_only=True):
    """A gate's answer for one attempt. ``failure_class`` picks the retry
    budget; leave it empty and it defaults to ``none`` for a pass and
    ``unknown`` otherwise (behaviour §2)."""

    outcome: EvaluatedOutcome
    failure_class: str = ""
    rationale: str = ""
    findings: tuple[Finding, ...] = ()


@runtime_checkable
class Gate(Protocol):
    """An executable gate: ``id`` is what plans list, ``type`` what kind of
    check it is (``verification``, ``security``, ...)."""

    id: str
    type: str

    def execute(self, context: GateContext, attempt: int) -> GateResult: ...


class GateValidationError(InputError, ValueError):
    """A gate object that must not be registered."""


def validate_gate(gate: object) -> None:
    """Reject registration mistakes with a message naming the problem."""
    gid = getattr(gate, "id", None)
    if not isinstance(gid, str) or not gid.strip():
        raise GateValidationError(f"gate {gate!r}: id must be a non-empty string, got {gid!r}")
    gtype = getattr(gate, "type", None)
    if not isinstance(gtype, str) or not gtype.strip():
        raise GateValidationError(f"gate {gid!r}: type must be a non-empty string, got {gtype!r}")
    if not callable(getattr(gate, "execute", None)):
        raise GateValidationError(f"gate {gid!r}: execute must be callable (execute(context, attempt) -> GateResult)")


def normalise_failure_class(outcome: str, failure_class: str) -> FailureClass:
    """The class to record: ``none`` for a pass; ``unknown`` for a failure
    without one, or with a class outside the vocabulary (unit and turn
    events only hold the classes of behaviour §4)."""
    if outcome == "pass":
        return "none"
    if not failure_class:
        return "none" if outcome == "skip" else "unknown"
    fc = failure_class_of(failure_class)
    return "unknown" if fc == "none" and outcome != "skip" else fc


class Judgement(msgspec.Struct, frozen=True, kw_only=True):
    """The runner's verdict on one attempt."""

    outcome: GateOutcome
    failure_class: FailureClass
    retryable: bool
    max_attempts: int


def judge(outcome: EvaluatedOutcome, failure_class: str, attempt: int) -> Judgement:
    """Apply the retry matrix to one attempt's result.

    ``retryable = outcome not in (pass, skip) and attempt <= budget``; the
    recorded outcome is ``retry`` when retryable, else the gate's own;
    ``max_attempts = budget + 1``. A ``skip`` is never retried: the gate
    decided not to judge, and asking again will not change that.
    """
    fc = normalise_failure_class(outcome, failure_class)
    budget = retry_budget(fc)
    retryable = outcome not in ("pass", "skip") and attempt <= budget
    return Judgement(
        outcome="retry" if retryable else outcome,
        failure_class=fc,
        retryable=retryable,
        max_attempts=budget + 1,
    )


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\w.~-]*[/\\])+[\w.-]+")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{8,}\b")
_NUM = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")


def normalise_rationale(text: str) -> str:
    """The rationale with what changes between runs replaced by placeholders."""
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUM.sub("<n>", text)
    return _SPACE.sub(" ", text).strip().lower()


def fingerprint(gate_id: str, failure_class: str, rationale: str) -> str:
    """Stable 16-hex key for 'the same failure of the same gate'."""
    key = f"{gate_id}\x1f{failure_class}\x1f{normalise_rationale(rationale)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]
