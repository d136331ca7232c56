"""The cost guard reads usage in the shapes real tools emit, and fails closed (issue 13).

Real runs of the CLI in a subprocess: each task appends lines to
``$UOK_USAGE_FILE`` the way a tool would (an OpenAI chat completion, an
Anthropic message with cache tokens, Claude Code's JSON result, string
numbers), then the recorded ``CostRecorded`` rows are checked to the cent
against prices worked out by hand from the providers' published rates.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import uok

OPENAI = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "usage": {
        "prompt_tokens": 120_000,
        "completion_tokens": 30_000,
        "prompt_tokens_details": {"cached_tokens": 20_000},
    },
}
# 100,000 x $2.50 + 20,000 x $1.25 (cached) + 30,000 x $10 per million = $0.25 + $0.025 + $0.30
OPENAI_USD = 0.575
ANTHROPIC = {
    "type": "message",
    "model": "claude-sonnet-4-5-20250929",
    "usage": {
        "input_tokens": "50000",
        "output_tokens": 10_000,
        "cache_creation_input_tokens": 40_000,
        "cache_read_input_tokens": 100_000,
    },
}
# 50,000 x $3 + 10,000 x $15 + 40,000 x $3.75 (cache write) + 100,000 x $0.30 (cache read) per million
ANTHROPIC_USD = 0.15 + 0.15 + 0.15 + 0.03
CLI_RESULT = {
    "type": "result",
    "subtype": "success",
    "total_cost_usd": 0.4321,
    "usage": {"input_tokens": 12, "output_tokens": 3400},
    "modelUsage": {
        "claude-sonnet-4-5": {"inputTokens": 12, "outputTokens": 3400, "cacheReadInputTokens": 9000, "costUSD": 0.4}
    },
}


def run(tmp_path: Path, *tasks: tuple[str, list[object], str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    plan_dir = tmp_path / "p"
    plan_dir.mkdir(exist_ok=True)
    body = '[plan]\nid = "cost"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for tid, lines, extra in tasks:
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
        code = f"import os\nopen(os.environ['UOK_USAGE_FILE'], 'a').write({text!r})\n{extra}"
        body += (
            f'[[milestones.slices.tasks]]\nid = "{tid}"\nretries = 0\ndepends_on = []\n'
            f'command = ["{sys.executable}", "-c", {orjson.dumps(code).decode()}]\n'
        )
    (plan_dir / "plan.toml").write_text(body)
    db = tmp_path / "c.db"
    r = uok("run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet")
    rows = [orjson.loads(line)["event"] for line in uok("events", "--db", str(db), "--json").stdout.splitlines()]
    return r, rows


def of(rows: list[dict], kind: str, unit: str) -> list[dict]:
    return [e for e in rows if e["type"] == kind and e.get("unit_id") == unit]


def test_openai_anthropic_and_cli_result_shapes_are_priced_to_the_cent(tmp_path: Path):
    r, rows = run(tmp_path, ("openai", [OPENAI], ""), ("anthropic", [ANTHROPIC], ""), ("cli", [CLI_RESULT], ""))
    assert r.returncode == 0, r.stdout + r.stderr
    [o] = of(rows, "CostRecorded", "openai")
    assert o["model"] == "gpt-4o" and o["cost_usd"] == pytest.approx(OPENAI_USD, abs=0.005)
    assert o["input_tokens"] == 120_000 and o["output_tokens"] == 30_000
    [a] = of(rows, "CostRecorded", "anthropic")
    assert a["model"] == "claude-sonnet-4-5" and a["cost_usd"] == pytest.approx(ANTHROPIC_USD, abs=0.005)
    assert a["input_tokens"] == 190_000  # cache reads and writes count as input tokens
    [c] = of(rows, "CostRecorded", "cli")
    assert c["cost_usd"] == pytest.approx(0.4321, abs=1e-9)  # the tool's own total, to the cent and beyond
    # read while it ran (UsageReported) or at its end (ExecutionFinished), whichever came first
    [usage] = [
        u
        for e in of(rows, "UsageReported", "anthropic") + of(rows, "ExecutionFinished", "anthropic")
        for u in e["usage"]
    ]
    assert usage["cache_read_tokens"] == 100_000 and usage["price"]["source"].startswith("genai-prices")
    passed = of(rows, "GateRun", "openai")
    assert passed[0]["outcome"] == "pass" and "$0.575" in passed[0]["rationale"]


def test_an_unknown_model_or_an_unreadable_line_stops_the_unit_naming_it(tmp_path: Path):
    r, rows = run(
        tmp_path,
        ("mystery", [{"model": "mystery-model-9000", "input_tokens": 10, "output_tokens": 5}], ""),
        ("garbled", [{"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5}, "{not json at all"], ""),
        ("counts", [{"model": "gpt-4o", "input_tokens": "lots", "output_tokens": 5}], ""),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    for unit, named in (
        ("mystery", "no price for model 'mystery-model-9000'"),
        ("garbled", "usage line 2: not JSON"),
        ("counts", "usage line 1: input_tokens is 'lots', not a token count"),
    ):
        [g] = of(rows, "GateRun", unit)
        assert g["gate_id"] == "cost-guard" and g["outcome"] == "fail" and named in g["rationale"], g["rationale"]
        [failed] = [e for e in of(rows, "UnitTransitioned", unit) if e["to_state"] == "failed"]
        assert failed["failure_class"] == "policy" and named in failed["reason"]


def test_warn_instead_of_stop_is_a_setting(tmp_path: Path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "uok.toml").write_text('[uok.cost_guard]\nunpriced = "warn"\n')
    r, rows = run(tmp_path, ("mystery", [{"model": "mystery-model-9000", "input_tokens": 10}], ""))
    assert r.returncode == 0, r.stdout + r.stderr
    runs = of(rows, "GateRun", "mystery")  # the warning: when the line was read, mid-turn or at the end
    assert runs and all(g["outcome"] == "pass" for g in runs)
    assert any("no price for model 'mystery-model-9000'" in g["rationale"] for g in runs)


def test_each_task_is_told_its_remaining_budget(tmp_path: Path):
    show = "import json; print('budget', os.environ['UOK_BUDGET_USD'], json.load(open(os.environ['UOK_FEEDBACK_FILE']))['budget']['unit_ceiling_usd'])"
    r, _rows = run(tmp_path, ("told", [], show))
    assert r.returncode == 0, r.stdout + r.stderr
    out = uok("logs", "--db", str(tmp_path / "c.db"), "told")
    assert "budget 2.000000 2.0" in out.stdout


def test_a_task_that_keeps_spending_is_stopped_mid_turn_and_the_run_replays(tmp_path: Path):
    # Four lines at $0.75 on claude-opus-4-6 ($3.00) in one write: the $2.00 ceiling is crossed at
    # the third. Then the task waits, and would exit 0 after 90 s: only the guard can end it early.
    # Nothing here depends on how fast the guard reacts (a busy machine once let a task that kept
    # writing get 22 lines in before the stop), so the sum is exact.
    lines = (json.dumps({"model": "claude-opus-4-6", "input_tokens": 100000, "output_tokens": 10000}) + "\n") * 4
    spend = (
        "import time\n"
        "with open(os.environ['UOK_USAGE_FILE'], 'a') as f:\n"
        f"    f.write({lines!r})\n"
        "print('spent 4', flush=True)\n"
        "deadline = time.monotonic() + 90\n"
        "while time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
    )
    r, rows = run(tmp_path, ("spender", [], "import json\n" + spend))
    assert r.returncode == 1, r.stdout + r.stderr
    [failed] = [e for e in of(rows, "UnitTransitioned", "spender") if e["to_state"] == "failed"]
    assert failed["failure_class"] == "policy" and "mid-turn, the task was stopped" in failed["reason"]
    assert "over the per-unit ceiling of $2.00" in failed["reason"]
    [ex] = of(rows, "ExecutionFinished", "spender")
    assert ex["stop"]["reason"] == "guard"  # stopped by the guard: on its own it waits 90 s, then exits 0
    spent = sum(e["cost_usd"] for e in of(rows, "CostRecorded", "spender"))
    assert spent == pytest.approx(4 * 0.75)  # every line written before the stop is charged
    assert of(rows, "UsageReported", "spender")  # read while it ran
    replay = uok("replay", "--db", str(tmp_path / "c.db"), "--all")
    assert replay.returncode == 0, replay.stdout + replay.stderr
