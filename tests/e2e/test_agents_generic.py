"""An agent task end to end through the CLI: a ``generic-jsonl`` agent
written in a few lines of shell (tests/agents/generic_agent.sh), its stream
recorded as ``AgentStep`` events while it runs, priced, queryable in SQL,
replayable (docs/agents.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from uok.domain import events as ev

from tests.conftest import ROOT, json_lines, uok

AGENT = ROOT / "tests" / "agents" / "generic_agent.sh"


def _plan(tmp_path: Path, *, agent: str = "generic-jsonl", command: str = f'["{AGENT}"]', extra: str = "") -> Path:
    plan = tmp_path / "plan.toml"
    cmd = f"command = {command}\n" if command else ""
    plan.write_text(
        '[plan]\nid = "ag"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        f'[[milestones.slices.tasks]]\nid = "write"\nagent = "{agent}"\n{cmd}'
        f'prompt = "hello agent"\n{extra}'
    )
    return plan


def test_a_shell_agent_runs_and_its_steps_are_events(tmp_path: Path):
    plan, db = _plan(tmp_path), tmp_path / "e.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "hello agent\n"  # the prompt reached it on stdin
    steps = json_lines(
        uok(
            "sql", "SELECT seq, kind, text, tool, files FROM agent_steps ORDER BY seq", "--db", str(db), "--json"
        ).stdout
    )
    assert [s["kind"] for s in steps] == ["session", "message", "tool_call", "tool_result", "usage", "result"]
    assert steps[1]["text"] == "asked: hello agent" and steps[2]["files"] == ["out.txt"]
    calls = json_lines(
        uok("sql", "SELECT tool, finished, is_error, result FROM tool_calls", "--db", str(db), "--json").stdout
    )
    assert calls == [{"tool": "write", "finished": True, "is_error": False, "result": "wrote out.txt"}]
    # the turn's recorded spend is what the agent reported, not the table's estimate
    total = json_lines(uok("sql", "SELECT round(sum(cost_usd), 8) AS usd FROM costs", "--db", str(db), "--json").stdout)
    assert total == [{"usd": 0.0125}]
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr


def test_an_error_result_fails_the_unit_with_the_agents_class(tmp_path: Path):
    script = tmp_path / "refuse.sh"
    script.write_text(
        "#!/bin/sh\n"
        'echo \'{"type": "message", "text": "I cannot do that"}\'\n'
        'echo \'{"type": "result", "status": "error", "failure_class": "policy", "text": "refused"}\'\n'
    )
    script.chmod(0o755)
    plan, db = _plan(tmp_path, command=f'["{script}"]'), tmp_path / "e.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 1
    units = json_lines(
        uok(
            "sql",
            "SELECT unit_id, failure_class, attempt FROM units WHERE unit_id = 'write'",
            "--db",
            str(db),
            "--json",
        ).stdout
    )
    assert units == [{"unit_id": "write", "failure_class": "policy", "attempt": 1}]  # policy: not retried


def test_a_stream_without_a_result_fails_even_with_exit_0(tmp_path: Path):
    script = tmp_path / "silent.sh"
    script.write_text('#!/bin/sh\necho \'{"type": "message", "text": "bye"}\'\n')
    script.chmod(0o755)
    plan, db = _plan(tmp_path, command=f'["{script}"]', extra="retries = 0\n"), tmp_path / "e.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 1
    units = json_lines(uok("sql", "SELECT reason FROM units WHERE unit_id = 'write'", "--db", str(db), "--json").stdout)
    assert "without a result" in units[0]["reason"]


@pytest.mark.parametrize(
    ("agent", "command", "message"),
    [
        ("no-such-agent", f'["{AGENT}"]', "unknown agent 'no-such-agent'"),
        ("generic-jsonl", "", "agent 'generic-jsonl' needs a command"),
        ("generic-jsonl", f'["{AGENT}"]\nagent_options = "x"', "agent_options must be a table"),
    ],
)
def test_a_bad_agent_task_is_refused_before_anything_runs(tmp_path: Path, agent: str, command: str, message: str):
    plan, db = _plan(tmp_path, agent=agent, command=command), tmp_path / "e.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not db.exists()  # nothing written


def test_an_agent_spending_past_its_ceiling_is_stopped_mid_turn(tmp_path: Path):
    """The guard judges each usage step as it streams: over the unit's
    ceiling the turn ends and the agent is stopped while it still runs
    (it would otherwise sleep for 60 s and never reach its result)."""
    script = tmp_path / "spender.sh"
    script.write_text(
        "#!/bin/sh\n"
        "trap 'echo stopped > stopped.txt; exit 143' TERM\n"
        'echo \'{"type": "usage", "model": "claude-opus-4-1", "input_tokens": 1000, "output_tokens": 100}\'\n'
        'echo \'{"type": "usage", "model": "claude-opus-4-1", "input_tokens": 1000, "output_tokens": 100}\'\n'
        "sleep 60 & wait\n"
        'echo \'{"type": "result", "status": "success", "cost_usd": 1}\'\n'
    )
    script.chmod(0o755)
    (tmp_path / "uok.toml").write_text("[uok.cost_guard]\nper_unit_usd = 0.03\n")
    plan, db = _plan(tmp_path, command=f'["{script}"]', extra="grace = 5\n"), tmp_path / "e.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", timeout=50)
    assert r.returncode == 1, r.stderr
    assert (tmp_path / "stopped.txt").exists()  # SIGTERM reached it: it was stopped, it did not finish
    q = "SELECT count(*) AS n, round(sum(cost_usd), 4) AS usd FROM costs"
    assert json_lines(uok("sql", q, "--db", str(db), "--json").stdout) == [
        {"n": 2, "usd": 0.045}
    ]  # 2 x $0.0225: the second crossed $0.03
    units = json_lines(
        uok("sql", "SELECT failure_class, reason FROM units WHERE unit_id = 'write'", "--db", str(db), "--json").stdout
    )
    assert units[0]["failure_class"] == "policy" and "mid-turn" in units[0]["reason"], units
    x = json_lines(uok("sql", "SELECT stop_reason FROM executions", "--db", str(db), "--json").stdout)
    assert x == [{"stop_reason": "guard"}]
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr


def test_a_markdown_task_files_body_is_the_agents_prompt(tmp_path: Path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "write.md").write_text(
        f'+++\nid = "write"\nagent = "generic-jsonl"\ncommand = ["{AGENT}"]\n+++\nfrom the body\n'
    )
    plan, db = tmp_path / "plan.toml", tmp_path / "e.db"
    plan.write_text(
        '[plan]\nid = "md"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nfile = "tasks/write.md"\n'
    )
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "from the body\n"


def test_usage_of_a_model_nobody_can_price_stops_the_agent(tmp_path: Path):
    """Fail closed: spend the guard cannot price is spend it cannot judge."""
    script = tmp_path / "mystery.sh"
    script.write_text(
        "#!/bin/sh\n"
        'echo \'{"type": "usage", "model": "mystery-model-9", "input_tokens": 10, "output_tokens": 1}\'\n'
        "sleep 60 & wait\n"
    )
    script.chmod(0o755)
    plan, db = _plan(tmp_path, command=f'["{script}"]', extra="grace = 5\n"), tmp_path / "e.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet", timeout=50).returncode == 1
    units = json_lines(
        uok("sql", "SELECT failure_class, reason FROM units WHERE unit_id = 'write'", "--db", str(db), "--json").stdout
    )
    assert units[0]["failure_class"] == "policy" and "no price for model 'mystery-model-9'" in units[0]["reason"], units


def test_logs_transcript_follow_prints_steps_as_the_agent_streams_them(tmp_path: Path):
    import subprocess
    import sys

    from tests.run_support import read_events, start_run, wait_for

    script = tmp_path / "waiter.sh"
    script.write_text(
        "#!/bin/sh\n"
        'echo \'{"type": "message", "text": "first, then I wait"}\'\n'
        "until [ -f go ]; do sleep 0.05; done\n"
        'echo \'{"type": "message", "text": "went on"}\'\n'
        'echo \'{"type": "result", "status": "success", "text": "done"}\'\n'
    )
    script.chmod(0o755)
    plan, db = _plan(tmp_path, command=f'["{script}"]'), tmp_path / "e.db"
    run = start_run(plan, db)
    try:
        wait_for(lambda: db.exists() and any(isinstance(e, ev.AgentStep) for _, e in read_events(db)), what="a step")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        follower = subprocess.Popen(
            [sys.executable, "-m", "uok", "logs", "write", "--transcript", "--follow", "--db", str(db)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith("== write attempt 1")
        assert follower.stdout.readline().startswith("[0] message  first, then I wait")  # while the agent waits
        (tmp_path / "go").touch()
        rest = follower.communicate(timeout=60)[0].splitlines()
        assert follower.returncode == 0 and rest == ["[1] message  went on", "[2] result  success done"]
    finally:
        run.wait(timeout=60)
