"""Coding-agent CLIs as tasks: one adapter module per agent (docs/agents.md).

A task with ``agent = "<name>"`` is run by the adapter registered under that
name: it builds the command line, the executor hands the prompt on stdin
(and in ``UOK_PROMPT_FILE``), and :class:`~uok.adapters.agents.stream.AgentStream`
turns the agent's stdout into ``AgentStep`` events while it runs. Adding an
agent is one module with one :class:`~uok.adapters.agents.base.AgentAdapter`
subclass, listed in :data:`ADAPTERS`.
"""

from __future__ import annotations

from uok.adapters.agents.base import AgentAdapter, Draft
from uok.adapters.agents.claude_code import ClaudeCode
from uok.adapters.agents.codex import Codex
from uok.adapters.agents.gemini import Gemini
from uok.adapters.agents.generic import GenericJsonl
from uok.domain.errors import InputError
from uok.domain.plan import AgentSpec, UnitGraph

ADAPTERS: dict[str, type[AgentAdapter]] = {
    ClaudeCode.name: ClaudeCode,
    Codex.name: Codex,
    Gemini.name: Gemini,
    GenericJsonl.name: GenericJsonl,
}
"""Every agent uok speaks, by the name a task's ``agent`` gives."""


def adapter_for(spec: AgentSpec) -> AgentAdapter:
    """A fresh adapter for one turn of an agent task."""
    try:
        return ADAPTERS[spec.name](spec)
    except KeyError:
        raise InputError(f"unknown agent {spec.name!r} (known: {', '.join(sorted(ADAPTERS))})") from None


def check_plan(graph: UnitGraph, source: str = "plan") -> None:
    """Refuse, before anything runs, a task naming an agent uok has no adapter
    for, an option its adapter does not read, or a ``generic-jsonl`` task
    without its ``command``."""
    for node in graph.nodes:
        spec = node.agent
        if spec is None:
            continue
        cls = ADAPTERS.get(spec.name)
        if cls is None:
            raise InputError(
                f"{source}: task '{node.id}': unknown agent {spec.name!r} (known: {', '.join(sorted(ADAPTERS))})"
            )
        if cls.needs_command and not node.command:
            raise InputError(f"{source}: task '{node.id}': agent {spec.name!r} needs a command (the tool to run)")
        unknown = sorted(set(spec.options) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(cls.options)) or "none"
            raise InputError(
                f"{source}: task '{node.id}': agent {spec.name!r} has no option {unknown[0]!r} (its options: {known})"
            )


__all__ = ["ADAPTERS", "AgentAdapter", "Draft", "adapter_for", "check_plan"]
