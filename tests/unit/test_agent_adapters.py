"""The adapters' pure parts: the command lines they build, the options they
refuse, their outcome mapping (uok.adapters.agents; docs/agents.md)."""

from __future__ import annotations

import pytest
from uok.adapters.agents import adapter_for, check_plan
from uok.domain.errors import InputError
from uok.domain.plan import AgentSpec, compile_plan


def _node(agent: str, options: str = "", command: str = "", model: str = ""):
    src = (
        '[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n[[milestones.slices.tasks]]\n'
        f'id = "t"\nagent = "{agent}"\n{command}{model}' + (f"agent_options = {options}\n" if options else "")
    )
    return compile_plan(src, filename="p.toml")


def test_claude_code_argv_prompt_never_on_the_command_line():
    graph = _node(
        "claude-code",
        '{ max_turns = 3, max_budget_usd = 0.5, allowed_tools = ["Read", "Bash"] }',
        model='model = "sonnet"\n',
    )
    node = graph.nodes[0]
    argv = adapter_for(node.agent).argv(node)
    assert argv == [
        "claude", "-p", "--output-format", "stream-json", "--verbose", "--model", "sonnet",
        "--max-turns", "3", "--max-budget-usd", "0.5", "--allowedTools", "Read,Bash",
    ]  # fmt: skip


def test_codex_argv_reads_the_prompt_from_stdin_and_a_command_replaces_the_executable():
    graph = _node("codex", '{ resume = "th-1", full_auto = true }', command='command = ["npx", "codex"]\n')
    node = graph.nodes[0]
    assert adapter_for(node.agent).argv(node) == [
        "npx",
        "codex",
        "exec",
        "--json",
        "--full-auto",
        "resume",
        "th-1",
        "-",
    ]


@pytest.mark.parametrize(
    ("agent", "options", "message"),
    [
        ("claude-code", "{ max_turn = 3 }", "has no option 'max_turn'"),
        ("gpt-cli", "", "unknown agent 'gpt-cli'"),
        ("generic-jsonl", "", "needs a command"),
    ],
)
def test_a_task_the_adapters_cannot_run_is_refused(agent: str, options: str, message: str):
    with pytest.raises(InputError, match=message):
        check_plan(_node(agent, options))


def test_claude_usage_of_one_message_split_over_events_counts_once_and_refusal_is_not_retried():
    a = adapter_for(AgentSpec(name="claude-code"))
    msg = {"type": "assistant", "message": {"id": "m1", "model": "x", "content": [], "usage": {"input_tokens": 5}}}
    assert [d.kind for d in a.parse(msg)] == ["usage"] and a.parse(msg) == []
    a.parse({"type": "result", "subtype": "success", "is_error": True, "stop_reason": "refusal", "result": "no"})
    outcome = a.outcome(0)
    assert (outcome.is_error, outcome.failure_class) == (True, "policy")
    a.parse({"type": "result", "subtype": "error_max_turns", "is_error": True, "total_cost_usd": "0.5"})
    outcome = a.outcome(1)
    assert (outcome.failure_class, outcome.cost_usd) == ("timeout", 0.5)


def test_claude_code_can_cap_itself_at_the_units_remaining_budget():
    from uok.adapters.agents.base import remaining_budget

    graph = _node("claude-code", '{ max_budget_usd = "remaining" }')
    node = graph.nodes[0]
    adapter = adapter_for(node.agent)
    adapter.budget = remaining_budget({"budget": {"unit_remaining_usd": 1.25, "window_remaining_usd": 0.4}})
    argv = adapter.argv(node)
    assert argv[argv.index("--max-budget-usd") + 1] == "0.400000"
    assert "--max-budget-usd" not in adapter_for(node.agent).argv(node)  # no budget known: no cap
