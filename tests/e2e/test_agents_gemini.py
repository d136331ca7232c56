"""``agent = "gemini"`` end to end against a fake ``gemini`` executable
(tests/agents/fake_gemini.py) streaming the Gemini CLI's documented
headless ``stream-json`` events: never the real service (docs/agents.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, json_lines, uok

FAKE = ROOT / "tests" / "agents" / "fake_gemini.py"


def _run(tmp_path: Path, scenario: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gemini").symlink_to(FAKE)
    plan, db = tmp_path / "plan.toml", tmp_path / "e.db"
    plan.write_text(
        '[plan]\nid = "gm"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "plan"\nagent = "gemini"\nprompt = "write a plan"\n'
        'model = "gemini-2.5-pro"\nretries = 0\nagent_options = { approval_mode = "auto_edit" }\n'
    )
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GEMINI": scenario}
    uok("run", str(plan), "--db", str(db), "--quiet", env=env)
    return db


def _sql(db: Path, query: str) -> list[dict]:
    r = uok("sql", query, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return json_lines(r.stdout)


def test_a_gemini_session_becomes_steps_with_its_deltas_joined(tmp_path: Path):
    db = _run(tmp_path, "session")
    assert _sql(db, "SELECT state FROM units WHERE unit_id = 'plan'") == [{"state": "completed"}]
    steps = _sql(db, "SELECT kind, text, is_error FROM agent_steps ORDER BY seq")
    assert [s["kind"] for s in steps] == ["session", "tool_call", "tool_result", "error", "message", "usage", "result"]
    assert steps[4]["text"] == "I wrote plan.txt as asked." and steps[3]["is_error"] is False  # a warning
    assert _sql(db, "SELECT tool, files, finished FROM tool_calls") == [
        {"tool": "write_file", "files": ["plan.txt"], "finished": True}
    ]
    # 10,000 uncached input at $1.25/M, 2,000 cached at $0.125/M (genai-prices), 100 output at $10/M
    assert _sql(db, "SELECT model, round(cost_usd, 6) AS usd FROM costs") == [
        {"model": "gemini-2.5-pro", "usd": 0.01375}
    ]


@pytest.mark.parametrize(("scenario", "failure_class"), [("turn_limit", "timeout"), ("auth", "policy")])
def test_gemini_exit_codes_map_onto_failure_classes(tmp_path: Path, scenario: str, failure_class: str):
    db = _run(tmp_path, scenario)
    units = _sql(db, "SELECT state, failure_class FROM units WHERE unit_id = 'plan'")
    assert units == [{"state": "failed", "failure_class": failure_class}]
