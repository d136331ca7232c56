"""Evals over recorded runs (issue 19, behaviour §20): `uok eval SUITE.toml`
runs 3 cases × 2 variants × 5 repetitions of a fake agent (a tiny shell
script) whose success rate differs by variant; the report ranks the
variants correctly, says the difference in pass rate is significant, and
its numbers equal what `uok sql` computes over the same log. Real CLI
subprocesses, a real log, real DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import json_lines, uok

AGENT = """\
# a fake agent: reports usage of $UOK_MODEL, fails when its repetition is in $FAIL_REPS
echo "{\\"model\\": \\"${UOK_MODEL:-claude-haiku-4-5}\\", \\"input_tokens\\": $((1000 * UOK_EVAL_REPETITION)), \\"output_tokens\\": 200}" >> "$UOK_USAGE_FILE"
case " $FAIL_REPS " in *" $UOK_EVAL_REPETITION "*) exit 1;; esac
"""

SUITE = """\
[suite]
id = "fake-agent"
repetitions = 5
{cases}
[[variants]]
id = "careful"
model = "claude-haiku-4-5"
env = {{ FAIL_REPS = "" }}

[[variants]]
id = "sloppy"
model = "claude-sonnet-4-6"
env = {{ FAIL_REPS = "1 2 4" }}
task = {{ retries = 1 }}
"""

CASE = """
[[cases]]
id = "{id}"
task = {{ command = ["sh", "agent.sh"], retries = 0, timeout = 30 }}
"""


def write_suite(root: Path, cases: int = 3, repetitions: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "agent.sh").write_text(AGENT)
    body = SUITE.format(cases="".join(CASE.format(id=f"case{i}") for i in range(1, cases + 1)))
    suite = root / "suite.toml"
    suite.write_text(body.replace("repetitions = 5", f"repetitions = {repetitions}"))
    return suite


ENV = {"UOK_SYNCHRONOUS": "NORMAL"}  # 30 runs: no fsync per commit needed for this property


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("eval")
    suite = write_suite(root)
    db = root / "events.db"
    r = uok("eval", str(suite), "--db", str(db), "--json", cwd=root, env=ENV)
    assert r.returncode == 0, r.stderr
    return root, db, json.loads(r.stdout)


def sql(db: Path, query: str) -> list[dict]:
    r = uok("sql", query, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return json_lines(r.stdout)


def test_the_report_ranks_the_variants_and_calls_the_difference_significant(evaluated):
    _, _, report = evaluated
    careful, sloppy = report["variants"]
    assert (careful["variant"], careful["rank"]) == ("careful", 1)
    assert (sloppy["variant"], sloppy["rank"]) == ("sloppy", 2)
    assert (careful["runs"], careful["passes"]) == (15, 15)
    assert (sloppy["runs"], sloppy["passes"]) == (15, 6)  # repetitions 1, 2 and 4 fail, in every case
    assert sloppy["pass_rate"]["low"] < 0.4 < sloppy["pass_rate"]["high"] < careful["pass_rate"]["low"]
    assert sloppy["retries"]["estimate"] == pytest.approx(9 / 15)  # one retry per failed run
    assert careful["retries"]["estimate"] == 0
    assert careful["cost_usd"]["estimate"] < sloppy["cost_usd"]["estimate"]  # the model the variant names is priced
    assert careful["cost_usd"]["low"] <= careful["cost_usd"]["estimate"] <= careful["cost_usd"]["high"]
    verdict = {c["metric"]: c for c in report["comparisons"]}
    assert verdict["pass_rate"]["a"] == "sloppy" and verdict["pass_rate"]["b"] == "careful"
    assert verdict["pass_rate"]["significant"] and verdict["pass_rate"]["p_value"] < 0.01
    assert verdict["tokens"]["a_value"] > verdict["tokens"]["b_value"]  # a retried attempt spends again


def test_the_report_equals_what_sql_computes_over_the_same_log(evaluated):
    _, db, report = evaluated
    rows = {r["variant"]: r for r in sql(db, f"SELECT * FROM eval_variants WHERE eval_id = '{report['eval_id']}'")}
    assert set(rows) == {"careful", "sloppy"}
    for v in report["variants"]:
        row = rows[v["variant"]]
        assert (row["rank"], row["runs"], row["passes"], row["cases"]) == (v["rank"], v["runs"], v["passes"], 3)
        assert row["units_completed"] == v["units_completed"] and row["units_failed"] == v["units_failed"]
        for ours, theirs in (
            (v["pass_rate"]["estimate"], row["pass_rate"]),
            (v["pass_rate"]["low"], row["pass_rate_low"]),
            (v["pass_rate"]["high"], row["pass_rate_high"]),
            (v["cost_usd"]["estimate"], row["cost_usd_mean"]),
            (v["tokens"]["estimate"], row["tokens_mean"]),
            (v["duration_ms"]["estimate"], row["duration_ms_mean"]),
            (v["duration_p50_ms"], row["duration_p50_ms"]),
            (v["duration_p95_ms"], row["duration_p95_ms"]),
            (v["retries"]["estimate"], row["retries_mean"]),
        ):
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_every_run_is_tagged_with_its_case_variant_and_repetition_and_replays(evaluated):
    _, db, _report = evaluated
    cells = sql(
        db,
        "SELECT case_id, variant, count(DISTINCT r.run_id) AS n, list(DISTINCT repetition ORDER BY repetition) AS reps,"
        " list(DISTINCT c.model) AS models, max(r.run_id) AS last"
        " FROM eval_runs r JOIN costs c USING (run_id) GROUP BY ALL",
    )
    assert len(cells) == 6 and all(c["n"] == 5 and c["reps"] == [1, 2, 3, 4, 5] for c in cells)
    # the variant's model reached the task (UOK_MODEL) and its cost records
    assert {c["variant"]: c["models"] for c in cells} == {
        "careful": ["claude-haiku-4-5"],
        "sloppy": ["claude-sonnet-4-6"],
    }
    last = {"run_id": cells[0]["last"]}
    metrics = uok("metrics", "--db", str(db)).stdout  # the same results through /metrics' exposition
    assert 'uok_eval_runs_total{outcome="passed",suite="fake-agent",variant="careful"} 15.0' in metrics
    assert 'uok_eval_runs_total{outcome="failed",suite="fake-agent",variant="sloppy"} 9.0' in metrics
    r = uok("replay", last["run_id"], "--db", str(db))
    assert r.returncode == 0, r.stdout + r.stderr


def test_report_against_a_variant_and_against_another_log(evaluated, tmp_path: Path):
    _root, db, report = evaluated
    # a run uok eval did not start, recorded after the eval, changes nothing in the report
    plain = tmp_path / "plain.toml"
    plain.write_text(
        '[plan]\nid = "plain"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "t"\ncommand = ["true"]\n'
    )
    assert uok("run", str(plain), "--db", str(db), "--quiet", cwd=tmp_path, env=ENV).returncode == 0
    again = json.loads(uok("eval", "report", "--db", str(db), "--json").stdout)
    assert again["eval_id"] == report["eval_id"] and again["variants"] == report["variants"]
    r = uok("eval", "report", "--against", "sloppy", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    verdict = {c["metric"]: c for c in json.loads(r.stdout)["comparisons"]}
    assert (verdict["pass_rate"]["a"], verdict["pass_rate"]["b"]) == ("careful", "sloppy")
    text = uok("eval", "report", report["eval_id"], "--db", str(db)).stdout
    assert "careful" in text and "SIGNIFICANT" in text
    # another code version: the same suite recorded in another log
    other = tmp_path / "other.db"
    small = write_suite(tmp_path / "suite", cases=1, repetitions=2)
    assert uok("eval", str(small), "--db", str(other), "--quiet", cwd=small.parent, env=ENV).returncode == 0
    r = uok("eval", "report", "--against", str(other), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    side = json.loads(r.stdout)
    assert [v["runs"] for v in side["other"]] == [2, 2]
    assert {c["b"].split("@")[0] for c in side["comparisons"]} == {"careful", "sloppy"}


def test_bad_suites_write_nothing(tmp_path: Path):
    suite = write_suite(tmp_path)
    db = tmp_path / "x.db"
    suite.write_text(suite.read_text() + '\n[[variants]]\nid = "careful"\n')
    r = uok("eval", str(suite), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 2 and "duplicate variant id 'careful'" in r.stderr
    suite.write_text(SUITE.format(cases='\n[[cases]]\nid = "x"\ntask = { command = "nope" }\n'))
    r = uok("eval", str(suite), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 2 and "command" in r.stderr
    assert not db.exists()
    r = uok("eval", "report", "--db", str(tmp_path / "missing.db"))
    assert r.returncode == 2


def test_the_web_view_shows_the_eval_ranked(evaluated):
    from tests.ui_support import UiServer

    _root, db, report = evaluated
    with UiServer(db) as srv:
        status, _headers, body = srv.get("/evals")
    assert status == 200, body[:500]
    assert f'data-eval="{report["eval_id"]}"' in body and ">Evals</a>" in body
    rows = re.findall(r'<tr data-variant="(\w+)"><td class="num">(\d+)</td>', body)
    assert rows == [("careful", "1"), ("sloppy", "2")]
    assert "pass_rate" in body and ">significant<" in body


def test_a_prompt_variant_replaces_a_markdown_tasks_body_and_keeps_its_frontmatter(tmp_path: Path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "plan.toml").write_text(
        '[plan]\nid = "pp"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        'tasks = [{ file = "tasks/write.md" }]\n'
    )
    (tmp_path / "tasks" / "write.md").write_text(
        '+++\ncommand = ["sh", "-c", "cp \\"$UOK_PROMPT_FILE\\" \\"out-$UOK_EVAL_VARIANT.txt\\""]\nretries = 0\n+++\n'
        "Write it long.\n"
    )
    (tmp_path / "prompts" / "short.md").write_text("Write it short.\n")
    (tmp_path / "suite.toml").write_text(
        '[suite]\nid = "prompts"\n[[cases]]\nid = "w"\nplan = "plan.toml"\n[[variants]]\nid = "long"\n'
        '[[variants]]\nid = "short"\nprompt_files = { "tasks/write.md" = "prompts/short.md" }\n'
    )
    r = uok("eval", "suite.toml", "--db", str(tmp_path / "p.db"), "--json", cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr
    assert sorted((v["variant"], v["passes"]) for v in json.loads(r.stdout)["variants"]) == [("long", 1), ("short", 1)]
    assert (tmp_path / "out-long.txt").read_text() == "Write it long.\n"
    assert (tmp_path / "out-short.txt").read_text() == "Write it short.\n"
