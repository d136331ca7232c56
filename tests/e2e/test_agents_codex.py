"""``agent = "codex"`` end to end against a fake ``codex`` executable
(tests/agents/fake_codex.py) streaming ``codex exec --json``'s documented
events: never the real service (docs/agents.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, json_lines, uok

FAKE = ROOT / "tests" / "agents" / "fake_codex.py"


def _run(tmp_path: Path, scenario: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "codex").symlink_to(FAKE)
    plan, db = tmp_path / "plan.toml", tmp_path / "e.db"
    plan.write_text(
        '[plan]\nid = "cx"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "notes"\nagent = "codex"\nprompt = "write notes"\nmodel = "gpt-4.1"\n'
        'retries = 0\nagent_options = { sandbox = "workspace-write", skip_git_repo_check = true }\n'
    )
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_CODEX": scenario}
    uok("run", str(plan), "--db", str(db), "--quiet", env=env)
    return db


def _sql(db: Path, query: str) -> list[dict]:
    r = uok("sql", query, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return json_lines(r.stdout)


def test_a_codex_session_becomes_steps_and_priced_usage(tmp_path: Path):
    db = _run(tmp_path, "session")
    assert _sql(db, "SELECT state FROM units WHERE unit_id = 'notes'") == [{"state": "completed"}]
    assert (tmp_path / "notes.md").read_text() == "write notes\n"  # the prompt came on stdin
    kinds = [s["kind"] for s in _sql(db, "SELECT kind FROM agent_steps ORDER BY seq")]
    assert kinds == [
        "session",
        "thinking",
        "tool_call",
        "tool_result",
        "file_change",
        "tool_call",
        "tool_result",
        "message",
        "usage",
        "result",
    ]
    calls = _sql(db, "SELECT tool, is_error, result FROM tool_calls ORDER BY seq")
    assert calls == [
        {"tool": "shell", "is_error": False, "result": "README.md\n"},
        {"tool": "docs.search", "is_error": True, "result": "server timed out"},
    ]
    assert _sql(db, "SELECT files FROM agent_steps WHERE kind = 'file_change'") == [{"files": ["notes.md"]}]
    # cached input is part of OpenAI's input count: 315 uncached at $2/M, 24,448 cached at
    # $0.50/M (genai-prices' cache rate, recorded on the step), 122 output at $8/M
    cost = _sql(db, "SELECT model, input_tokens, output_tokens, round(cost_usd, 6) AS usd FROM costs")
    assert cost == [{"model": "gpt-4.1", "input_tokens": 24763, "output_tokens": 122, "usd": 0.01383}]
    cache = _sql(db, "SELECT input_tokens, cache_read_tokens FROM agent_steps WHERE kind = 'usage'")
    assert cache == [{"input_tokens": 315, "cache_read_tokens": 24448}]
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(("scenario", "failure_class"), [("failed", "execution"), ("invalid", "policy")])
def test_a_failed_codex_turn_maps_onto_a_failure_class(tmp_path: Path, scenario: str, failure_class: str):
    db = _run(tmp_path, scenario)
    units = _sql(db, "SELECT state, failure_class, reason FROM units WHERE unit_id = 'notes'")
    assert units[0]["state"] == "failed" and units[0]["failure_class"] == failure_class, units
    assert "turn.failed" in units[0]["reason"]
