"""The ``agent`` keys of a task: which coding-agent CLI runs it, and what it
is asked (docs/agents.md). Pure validation of the decoded TOML, like
:mod:`uok.domain.plan.parse`, which calls it for every task.

Which agent names exist is the shell's knowledge (one adapter module per
agent, :mod:`uok.adapters.agents`); the run refuses an unknown one before
anything is written (exit 2). Here only the shape is checked.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from uok.domain.plan.model import AgentSpec, PlanError

AGENT_KEYS = frozenset({"agent", "prompt", "model", "agent_options"})
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


class _Checks(Protocol):
    """What this module uses of the plan's parser (no import of it: no cycle)."""

    def fail(self, problem: str, task: str | None = None) -> PlanError: ...
    def string(self, table: dict[str, Any], key: str, what: str = "", task: str | None = None) -> str: ...
    def table(self, value: object, what: str, task: str | None = None) -> dict[str, Any]: ...
    def json_value(self, value: object, where: str, task: str) -> None: ...


def parse_agent(parser: _Checks, t: dict[str, Any], tid: str) -> AgentSpec | None:
    """The task's :class:`AgentSpec`, or None for a plain command task."""
    name = t.get("agent")
    if name is None:
        stray = sorted(k for k in AGENT_KEYS if k in t)
        if stray:
            raise parser.fail(f'{", ".join(stray)} without agent (set agent = "claude-code", "codex", ...)', tid)
        return None
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise parser.fail(f'agent must be an agent name such as "claude-code", got {name!r}', tid)
    prompt = parser.string(t, "prompt", "", tid)
    model = parser.string(t, "model", "", tid)
    options = parser.table(t.get("agent_options", {}), "agent_options", tid)
    parser.json_value(options, "agent_options", tid)
    return AgentSpec(name=name, prompt=prompt, model=model, options=dict(options))
