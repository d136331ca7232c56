"""The adapter interface: what uok needs to know about one coding-agent CLI.

An adapter is one small class per agent (docs/agents.md, "Write an
adapter"), instantiated once per turn (so it may keep what it has seen of
the stream), with four jobs:

* **argv builder** (:meth:`AgentAdapter.argv`): the command line, from the
  task's ``agent`` fields (the prompt goes on stdin and in
  ``UOK_PROMPT_FILE``, never on the command line: no length limit, no
  quoting, never in ``ps``);
* **stream parser** (:meth:`AgentAdapter.parse`): one decoded JSON line of
  the agent's stdout → zero or more :class:`Draft` steps;
* **usage extractor** (:meth:`AgentAdapter.usage`): the tokens a line
  reports, if any (the parser turns them into ``usage`` steps);
* **outcome mapping** (:meth:`AgentAdapter.outcome`): how the agent said
  its turn ended → an :class:`~uok.domain.events.AgentOutcome` with a uok
  failure class.

Everything else (splitting lines, tolerating a cut-off last line and
unknown types, redaction, out-of-line blobs, step numbering, tool call
durations) is :mod:`uok.adapters.agents.stream`'s, the same for every agent.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from uok.domain.events import AgentOutcome, AgentUsage
from uok.domain.plan import AgentSpec, UnitNode

ARGS_LIMIT = 500  # characters of a tool call's arguments kept in its step


class Draft(msgspec.Struct, kw_only=True):
    """A step as an adapter parsed it, before the stream numbers, redacts
    and records it (the fields of :class:`~uok.domain.events.AgentStep`)."""

    kind: str
    text: str = ""
    tool: str = ""
    tool_id: str = ""
    args: str = ""
    is_error: bool = False
    duration_ms: int | None = None
    files: tuple[str, ...] = ()
    usage: AgentUsage | None = None
    cost_usd: float | None = None
    model_costs: dict[str, float] = {}
    session_id: str = ""
    subtype: str = ""


class AgentAdapter:
    """Base of every adapter; subclasses set :attr:`name` and
    :attr:`executable` and implement the four jobs."""

    name: ClassVar[str]
    executable: ClassVar[tuple[str, ...]]  # the default command; a task's ``command`` replaces it
    needs_command: ClassVar[bool] = False  # True: the task must name its command (generic-jsonl)
    options: ClassVar[dict[str, str]] = {}  # the agent_options it reads -> what each becomes

    def __init__(self, spec: AgentSpec):
        self.spec = spec
        self.result: Draft | None = None  # the stream's final result, once seen
        self.session_id = ""
        self.resume = ""  # a session to resume (an earlier attempt's), set before argv()
        self.budget: float | None = None  # what the unit may still spend (USD), set before argv()
        self.steps = 0

    # ---------------------------------------------------------------- argv builder

    def argv(self, node: UnitNode) -> list[str]:
        """The command line; the prompt is on stdin."""
        base = list(node.command) if node.command else list(self.executable)
        return base + self.arguments()

    def arguments(self) -> list[str]:
        """Arguments after the executable (the agent's own flags)."""
        return []

    def resumed(self) -> str:
        """The session the command line resumes: ``agent_options.resume``, else
        the earlier attempt's (``resume_on_retry``), else none."""
        return str(self.spec.options.get("resume", "")) or self.resume

    # ---------------------------------------------------------------- stream parser

    def parse(self, obj: Any) -> list[Draft]:
        """The steps one decoded JSON line holds (``[]``: nothing worth a step;
        an ``unknown`` step for a line this adapter does not understand)."""
        raise NotImplementedError

    def finish(self) -> list[Draft]:
        """Steps still held when the stream ends (text chunks not yet a message)."""
        return []

    # ---------------------------------------------------------------- usage extractor

    def usage(self, obj: Any) -> AgentUsage | None:
        """The tokens one line reports, or None."""
        return None

    # ---------------------------------------------------------------- outcome mapping

    def outcome(self, exit_code: int | None) -> AgentOutcome:
        """How the turn ended, from the result step (or its absence)."""
        r = self.result
        if r is None:
            ok = exit_code == 0
            return AgentOutcome(
                agent=self.name,
                session_id=self.session_id,
                subtype="no-result",
                is_error=ok,  # a clean exit without a result is not a success (fail closed)
                failure_class="execution",
                reason="the agent's stream ended without a result",
                steps=self.steps,
            )
        failure_class, reason = self.failure(r)
        return AgentOutcome(
            agent=self.name,
            session_id=r.session_id or self.session_id,
            subtype=r.subtype,
            is_error=r.is_error,
            failure_class="none" if not r.is_error else failure_class,
            reason="" if not r.is_error else reason,
            cost_usd=r.cost_usd,
            steps=self.steps,
        )

    def failure(self, result: Draft) -> tuple[str, str]:
        """(failure class, reason) of an error result: the adapter's table."""
        return "execution", result.text[:300] or result.subtype


# ------------------------------------------------------------------------ helpers


def remaining_budget(feedback: Any) -> float | None:
    """What the unit may still spend (USD): the least of the unit's and the
    window's remaining budget in its feedback file's ``budget``, or None."""
    budget = (feedback or {}).get("budget") or {}
    left = [
        float(v) for k in ("unit_remaining_usd", "window_remaining_usd") if isinstance(v := budget.get(k), int | float)
    ]
    return max(0.0, min(left)) if left else None


def last_session(feedback: Any) -> str:
    """The session id the latest earlier attempt of an agent task recorded
    (its feedback file's ``previous_attempts``), or ``""``."""
    for attempt in reversed((feedback or {}).get("previous_attempts") or []):
        agent = attempt.get("agent") if isinstance(attempt, dict) else None
        if isinstance(agent, dict) and agent.get("session_id"):
            return str(agent["session_id"])
    return ""


def summarize(value: Any, limit: int = ARGS_LIMIT) -> str:
    """A tool call's arguments as one bounded line of JSON."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_int(value: Any) -> int:
    """A token count as the agent wrote it (int, float, numeric string), else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def text_of(value: Any) -> str:
    """Text from a string or a list of content blocks (``{"type": "text", "text": ...}``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [b.get("text", "") for b in value if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n".join(parts)
    return ""
