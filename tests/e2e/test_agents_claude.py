"""``agent = "claude-code"`` end to end against a fake ``claude`` executable
(tests/agents/fake_claude.py) that streams Claude Code's documented
``stream-json`` sessions: never the real service (docs/agents.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import ROOT, json_lines, uok

FAKE = ROOT / "tests" / "agents" / "fake_claude.py"
SECRET = "AKIAIOSFODNN7EXAMPLE"


def _setup(tmp_path: Path, scenario: str, *, extra: str = "") -> tuple[Path, Path, dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(FAKE)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "cc"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "hello"\nagent = "claude-code"\n'
        'prompt = "add hello.py"\nmodel = "claude-sonnet-4-5"\nagent_options = { max_turns = 8 }\n' + extra
    )
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_CLAUDE": scenario}
    return plan, tmp_path / "e.db", env


def _sql(db: Path, query: str) -> list[dict]:
    r = uok("sql", query, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return json_lines(r.stdout)


def test_a_claude_code_session_becomes_steps_tool_calls_and_its_reported_cost(tmp_path: Path):
    plan, db, env = _setup(tmp_path, "session")
    r = uok("run", str(plan), "--db", str(db), "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "hello.py").exists()
    calls = _sql(db, "SELECT tool, files, is_error, finished FROM tool_calls ORDER BY seq")
    assert calls == [
        {"tool": "Write", "files": ["hello.py"], "is_error": False, "finished": True},
        {"tool": "Bash", "files": [], "is_error": True, "finished": True},
    ]
    # three API messages, one of them split over two events: three usage steps, not four
    usage = _sql(
        db, "SELECT model, input_tokens, cache_write_tokens FROM agent_steps WHERE kind = 'usage' ORDER BY seq"
    )
    assert [u["input_tokens"] for u in usage] == [4, 6, 2] and usage[0]["cache_write_tokens"] == 1800
    assert _sql(db, "SELECT round(sum(cost_usd), 8) AS usd FROM costs") == [{"usd": 0.0421}]  # the result's total
    session = _sql(db, "SELECT DISTINCT session_id FROM agent_steps WHERE session_id <> ''")
    assert session == [{"session_id": "5f0c9a1e-2b7d-4c3e-9a55-0d6f1e2a3b4c"}]
    # the transcript: the stream as kept, redacted
    shown = uok("logs", "hello", "--db", str(db))
    assert shown.returncode == 0 and "I'll do this: add hello.py" in shown.stdout
    assert SECRET not in shown.stdout and SECRET not in db.read_bytes().decode("latin-1")
    steps = uok("logs", "hello", "--transcript", "--db", str(db)).stdout.splitlines()
    assert steps[0].startswith("== hello attempt 1") and steps[-1].startswith("[10] result  success $0.0421")
    assert any(line.startswith("[5] tool_call  Bash") for line in steps)
    assert "[REDACTED" in steps[2] and SECRET not in "\n".join(steps)
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr
    # what the agent said and did was the unit's progress while it ran
    progress = _sql(db, "SELECT reason FROM unit_transitions WHERE unit_id = 'hello' AND to_state = 'progress'")
    assert [p["reason"][:22] for p in progress] == [
        "agent says: I'll do th", "agent calls Write: {\"f", "agent calls Bash: {\"co", "agent says: Added hell",
    ]  # fmt: skip
    # the unit's page (uok report, the web view) lists the steps of each attempt
    page = tmp_path / "run.html"
    assert uok("report", "latest", "--html", str(page), "--db", str(db)).returncode == 0
    html = page.read_text()
    assert "Agent steps" in html and html.count('class="step-tool_call') == 2 and SECRET not in html
    # the trace: each tool call a span under the execution span, from its call to its result
    trace = tmp_path / "trace.json"
    assert uok("trace", "latest", "--out", str(trace), "--db", str(db)).returncode == 0
    data = json.loads(trace.read_text())
    spans = {s["name"]: s for rs in data["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
    write, bash = spans["execute_tool Write"], spans["execute_tool Bash"]
    assert write["parentSpanId"] == bash["parentSpanId"] == spans["execute hello"]["spanId"]
    assert bash["status"].get("code") == 2 and write["status"].get("code", 0) != 2  # the failed call is an error
    # time travel inside the turn: at the second tool call, the agent's steps up to it
    at = _sql(db, "SELECT position, seq FROM agent_steps WHERE tool = 'Bash' AND kind = 'tool_call'")[0]
    view = json_lines(uok("state", "--at", str(at["position"]), "--db", str(db), "--json").stdout)[0]
    (turn,) = view["turns_in_flight"]
    assert (turn["agent_steps"], turn["tool_calls"]) == (at["seq"] + 1, 2)
    assert turn["recent_steps"][-1].startswith(f"{at['seq']} tool_call Bash")
    assert all(line.split()[1] != "result" for line in turn["recent_steps"])  # not yet


def test_usage_past_the_ceiling_stops_claude_mid_turn_and_replays(tmp_path: Path):
    plan, db, env = _setup(tmp_path, "spend", extra="retries = 0\n")
    (tmp_path / "uok.toml").write_text("[uok.cost_guard]\nper_unit_usd = 0.5\n")
    r = uok("run", str(plan), "--db", str(db), "--quiet", env=env, timeout=50)  # the fake would sleep 60 s
    assert r.returncode == 1, r.stderr
    units = _sql(db, "SELECT failure_class, reason FROM units WHERE unit_id = 'hello'")
    assert units[0]["failure_class"] == "policy" and "mid-turn" in units[0]["reason"], units
    assert _sql(db, "SELECT stop_reason FROM executions") == [{"stop_reason": "guard"}]
    spent = _sql(db, "SELECT count(*) AS n, sum(cost_usd) AS usd FROM costs")[0]
    assert 0.5 < spent["usd"] < 0.7 and spent["n"] < 38  # stopped at the first step over $0.50, not at the end
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr


def test_max_turns_maps_to_timeout_and_a_cut_stream_is_kept(tmp_path: Path):
    plan, db, env = _setup(tmp_path, "max_turns", extra="retries = 0\n")
    assert uok("run", str(plan), "--db", str(db), "--quiet", env=env).returncode == 1
    assert _sql(db, "SELECT failure_class FROM units WHERE unit_id = 'hello'") == [{"failure_class": "timeout"}]
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    plan, db, env = _setup(cut_dir, "cut", extra="retries = 0\n")
    assert uok("run", str(plan), "--db", str(db), "--quiet", env=env).returncode == 1
    last = _sql(db, "SELECT kind, subtype, text FROM agent_steps ORDER BY seq DESC LIMIT 1")[0]
    assert (last["kind"], last["subtype"]) == ("unknown", "truncated") and last["text"].endswith('"type": "te')


def test_unknown_event_types_are_kept_raw_and_tolerated(tmp_path: Path):
    plan, db, env = _setup(tmp_path, "unknown")
    assert uok("run", str(plan), "--db", str(db), "--quiet", env=env).returncode == 0
    unknown = _sql(db, "SELECT subtype FROM agent_steps WHERE kind = 'unknown' ORDER BY seq")
    assert unknown == [{"subtype": "rate_limit_event"}, {"subtype": "system:compact_boundary"}]


def test_a_retry_resumes_the_session_of_the_attempt_before_it(tmp_path: Path):
    plan, db, env = _setup(tmp_path, "max_turns", extra="retries = 1\n")
    options = 'max_turns = 8, resume_on_retry = true, max_budget_usd = "remaining"'
    plan.write_text(plan.read_text().replace("max_turns = 8", options))
    assert uok("run", str(plan), "--db", str(db), "--quiet", env=env).returncode == 1
    first, second = (json.loads(line) for line in (tmp_path / "claude-argv.jsonl").read_text().splitlines())
    assert "--resume" not in first
    assert second[second.index("--resume") + 1] == "5f0c9a1e-2b7d-4c3e-9a55-0d6f1e2a3b4c"
    # each attempt capped at what the unit may still spend: $2 (the default ceiling), then $2 less the first's $0.0107
    caps = [float(argv[argv.index("--max-budget-usd") + 1]) for argv in (first, second)]
    assert caps == [2.0, 1.9893]
