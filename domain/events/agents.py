"""Events from inside an agent's turn (docs/agents.md).

A task with ``agent = "..."`` runs a coding-agent CLI that streams what it
does as JSON lines. The shell's adapter for that CLI
(:mod:`uok.adapters.agents`) turns each line into an :class:`AgentStep`
observation *while the agent runs*, so the log holds the turn's inside:
its messages, tool calls and results, the files it says it changed, its
usage and cost step by step, its session id and its final result. Replay,
``uok state --at``, ``uok sql`` (views ``agent_steps``, ``tool_calls``)
and the cost guard (live, mid-turn) all read them from here.

How the agent said its turn ended rides on the turn's
``ExecutionFinished`` as an :class:`AgentOutcome`, already mapped by the
adapter onto uok's failure classes.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from uok.domain.events.base import Event
from uok.domain.events.prices import UsagePrice

STEP_KINDS = (
    "session",  # the agent's session started (session id, model, tools)
    "message",  # an assistant message (text)
    "thinking",  # reasoning the agent chose to show
    "tool_call",  # the agent called a tool (name, arguments summary)
    "tool_result",  # a tool's result came back (error or not, summary)
    "file_change",  # files the agent says it changed
    "usage",  # tokens spent by one model call
    "result",  # the agent's final result (subtype, reported total cost)
    "error",  # an error the agent reported mid-stream
    "unknown",  # a line uok did not understand: kept raw, never dropped
)
"""The documented step kinds (a later uok may add more: readers must tolerate them)."""


class AgentUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens one model call spent, as the agent reported them."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class AgentStep(Event, frozen=True, kw_only=True):
    """One step of an agent's turn, measured from its stream as it ran.

    Text is redacted before it is recorded; a text longer than the inline
    limit is kept whole in a content-addressed blob beside the turn's logs
    (``blob`` is its SHA-256, ``text`` its beginning). ``seq`` numbers the
    turn's steps from 0 in stream order."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    agent: str
    seq: int
    kind: str
    text: str = ""
    blob: str = ""  # SHA-256 of the whole (redacted) text when it is longer than ``text``
    text_size: int = 0  # characters of the whole text
    tool: str = ""
    tool_id: str = ""
    args: str = ""  # a tool call's arguments, summarised (redacted, bounded)
    is_error: bool = False
    duration_ms: int | None = None
    files: tuple[str, ...] = ()
    usage: AgentUsage | None = None
    price: UsagePrice | None = (
        None  # a usage step's price, found by the shell (genai-prices), so replay prices the same
    )
    cost_usd: float | None = None  # a cost the agent itself reported (the result's total)
    model_costs: dict[str, float] = {}  # the result's total by model, when the agent says (claude's modelUsage)
    session_id: str = ""
    subtype: str = ""  # the agent's own name for the step (result subtype, raw event type)


class AgentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How an agent's turn ended, in the agent's words and in uok's.

    ``subtype`` is the agent's own terminal state (``success``,
    ``error_max_turns``, ``turn.failed`` ...); ``failure_class`` is what its
    adapter maps it to (``none`` when it succeeded; see docs/agents.md for
    each adapter's table: a refusal or an invalid request maps to ``policy``,
    which is not retried)."""

    agent: str
    session_id: str = ""
    subtype: str = ""
    is_error: bool = False
    failure_class: str = "none"
    reason: str = ""
    cost_usd: float | None = None
    steps: int = 0
