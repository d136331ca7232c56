"""`uok plan validate` and `uok plan show` (behaviour §11: a plan you can
inspect before it runs): real CLI subprocesses, a real run to compare the
printed graph with the one recorded, Graphviz's own `dot` to render the DOT."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson

from tests.conftest import json_lines, uok

PLAN = """
[plan]
id = "inspect"
title = "Inspect me"

[[milestones]]
id = "M1"
  [[milestones.slices]]
  id = "S1"
  title = "Build \\"quoted\\""
    [[milestones.slices.tasks]]
    id = "a"
    writes = ["out/shared.txt"]
    [[milestones.slices.tasks]]
    id = "b"
  [[milestones.slices]]
  id = "S2"
    [[milestones.slices.tasks]]
    id = "c"
    writes = ["out/shared.txt"]

[[milestones]]
id = "M2"
  [[milestones.slices]]
  id = "S3"
    [[milestones.slices.tasks]]
    id = "d"
"""


def _plan(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    plan = project / "inspect.toml"
    plan.write_text(PLAN)
    return plan


def test_validate_accepts_a_good_plan_and_writes_nothing(tmp_path: Path):
    plan = _plan(tmp_path)
    r = uok("plan", "validate", str(plan), cwd=plan.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok: plan inspect: 7 units (4 tasks), 1 file conflicts"
    [result] = json_lines(uok("plan", "validate", str(plan), "--json", cwd=plan.parent).stdout)
    assert result == {"ok": True, "plan_id": "inspect", "units": 7, "tasks": 4, "conflicts": 1}
    assert sorted(p.name for p in plan.parent.iterdir()) == ["inspect.toml"]  # no .uok, no log


def test_validate_refuses_a_bad_plan_with_exit_2_and_one_line(tmp_path: Path):
    plan = _plan(tmp_path)
    plan.write_text(PLAN.replace('id = "d"', 'id = "d"\ndepends_on = ["nowhere"]'))
    r = uok("plan", "validate", str(plan), cwd=plan.parent)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip() == f"uok: {plan}: task 'd': depends on unknown task 'nowhere'"
    assert sorted(p.name for p in plan.parent.iterdir()) == ["inspect.toml"]
    missing = uok("plan", "show", str(plan.parent / "absent.toml"))
    assert missing.returncode == 2 and "no such plan file" in missing.stderr


def test_validate_checks_the_config_as_run_does(tmp_path: Path):
    plan = _plan(tmp_path)
    (plan.parent / "uok.toml").write_text("[uok]\nno_such_setting = 1\n")
    r = uok("plan", "validate", str(plan), cwd=plan.parent)
    assert r.returncode == 2, r.stdout
    assert "no_such_setting" in r.stderr


def test_show_json_equals_the_graph_plan_compiled_records(tmp_path: Path):
    plan = _plan(tmp_path)
    shown = uok("plan", "show", str(plan), "--json")
    assert shown.returncode == 0, shown.stderr
    [printed] = json_lines(shown.stdout)
    db = tmp_path / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    [compiled] = [e for e in rows if e["type"] == "PlanCompiled"]
    assert printed["graph"] == compiled["graph"]
    assert printed["pipeline"] == {"artifacts": {}, "held": {}, "clarify_rounds": {}}
    assert printed["graph"]["conflicts"] == [{"node_a": "a", "node_b": "c", "file": "out/shared.txt"}]


def test_show_text_lists_units_in_run_order_and_the_conflicts(tmp_path: Path):
    plan = _plan(tmp_path)
    r = uok("plan", "show", str(plan))
    assert r.returncode == 0, r.stderr
    order = orjson.loads(uok("plan", "show", str(plan), "--json").stdout)["graph"]["order"]
    listed = [line.split()[1] for line in r.stdout.splitlines() if line.startswith("  ") and ":" not in line[:4]]
    assert listed[: len(order)] == order
    assert "out/shared.txt: a <-> c" in r.stdout


def test_show_dot_renders_with_graphviz(tmp_path: Path):
    plan = _plan(tmp_path)
    r = uok("plan", "show", str(plan), "--dot")
    assert r.returncode == 0, r.stderr
    dot = shutil.which("dot")
    assert dot, "Graphviz's dot is needed (apt-get install graphviz; .ci/run installs it)"
    # -Tplain: one line per node ("node NAME x y w h label ...") and per edge ("edge TAIL HEAD ...")
    rendered = subprocess.run([dot, "-Tplain"], input=r.stdout, capture_output=True, text=True, check=True).stdout
    nodes = {line.split()[1].strip('"') for line in rendered.splitlines() if line.startswith("node ")}
    edges = {
        tuple(x.strip('"') for x in line.split()[1:3]) for line in rendered.splitlines() if line.startswith("edge ")
    }
    assert nodes == {"a", "b", "c", "d", "complete-slice:M1/S1", "complete-slice:M1/S2", "complete-slice:M2/S3"}
    assert ("a", "b") in edges and ("b", "complete-slice:M1/S1") in edges
    assert ("complete-slice:M1/S1", "d") in edges and ("complete-slice:M1/S2", "d") in edges
    assert ("a", "c") in edges  # the file conflict, drawn dashed
    svg = subprocess.run([dot, "-Tsvg"], input=r.stdout, capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg and "Build &quot;quoted&quot;" in svg  # the slice title, quotes escaped for DOT


def test_show_mermaid_draws_every_edge(tmp_path: Path):
    plan = _plan(tmp_path)
    r = uok("plan", "show", str(plan), "--mermaid")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    alias = {
        line.split('"')[1]: line.split("[")[0].split("{")[0].strip()
        for line in lines[1:]
        if '"' in line and "--" not in line and "-." not in line
    }
    assert set(alias) == {"a", "b", "c", "d", "complete-slice:M1/S1", "complete-slice:M1/S2", "complete-slice:M2/S3"}
    assert f"  {alias['a']} --> {alias['b']}" in lines
    assert f"  {alias['complete-slice:M1/S2']} --> {alias['d']}" in lines
    assert f'  {alias["a"]} -. "out/shared.txt" .- {alias["c"]}' in lines
    assert uok("plan", "show", str(plan), "--dot", "--mermaid").returncode == 2


def test_show_reports_the_pipeline_facts(tmp_path: Path):
    plan = _plan(tmp_path)
    text = PLAN.replace('id = "M1"\n', 'id = "M1"\nrequires = true\n', 1).replace('id = "d"', 'id = "d"\nclarify = 2')
    plan.write_text(text)
    (plan.parent / "CONTEXT-DRAFT.md").write_text("draft\n")
    (plan.parent / "RESEARCH.md").write_text("notes\n")
    [shown] = json_lines(uok("plan", "show", str(plan), "--json").stdout)
    assert shown["pipeline"] == {
        "artifacts": {
            "CONTEXT.md": "missing",
            "CONTEXT-DRAFT.md": "present",
            "RESEARCH.md": "present",
            "RESEARCH-DRAFT.md": "missing",
        },
        "held": {  # every unit of M1 would wait for the finalized CONTEXT.md
            unit: ["draft exists but finalized CONTEXT.md is missing"]
            for unit in ("a", "b", "complete-slice:M1/S1", "c", "complete-slice:M1/S2")
        },
        "clarify_rounds": {"d": 2},
    }
    r = uok("plan", "show", str(plan))
    assert "  missing  CONTEXT.md" in r.stdout and "  a: draft exists but finalized CONTEXT.md is missing" in r.stdout
    assert "  d: 2" in r.stdout
