"""Tasks as Markdown files with frontmatter (uok.domain.plan.taskfiles,
behaviour §11): TOML and YAML frontmatter, the body as the task's prompt and
its hash in the unit, globs per slice, and errors naming file and line.
Pure: the files are given as text, as KernelEntered records them."""

from __future__ import annotations

import hashlib

import pytest
from uok.domain.plan import PlanError, compile_plan
from uok.domain.plan.taskfiles import parse_task_file, referenced_task_files

PLAN = """
[plan]
id = "md"
[[milestones]]
id = "M1"
  [[milestones.slices]]
  id = "S1"
  task_files = "tasks/*.md"
    [[milestones.slices.tasks]]
    id = "inline"
    [[milestones.slices.tasks]]
    file = "./first.md"
"""

TOML_TASK = """+++
id = "T02"
title = "Second"
command = ["python3", "-c", "pass"]
writes = ["out/b.txt"]
timeout = 30
[metadata]
owner = "alice"
+++
Do the second thing.
"""

YAML_TASK = """---
title: First
depends_on: []
writes:
  - out/a.txt
retries: 0
---
Say hello.
"""


def compile_with(files: dict[str, str], globs: dict[str, tuple[str, ...]] | None = None, plan: str = PLAN):
    return compile_plan(plan, filename="plan.toml", files=files, globs=globs or {})


def test_referenced_task_files_lists_files_and_globs_as_written():
    assert referenced_task_files(PLAN) == (["./first.md"], ["tasks/*.md"])
    assert referenced_task_files("not toml [") == ([], [])


def test_markdown_tasks_compile_with_their_fields_body_and_hash():
    files = {"first.md": YAML_TASK, "tasks/T02.md": TOML_TASK, "tasks/T03.md": "+++\n+++\nthird\n"}
    graph = compile_with(files, {"tasks/*.md": ("tasks/T02.md", "tasks/T03.md")})
    nodes = {n.id: n for n in graph.nodes}
    # inline tasks first, file tasks in place, then the glob's matches in order
    assert [n.id for n in graph.nodes if n.kind == "unit"] == ["inline", "first", "T02", "T03"]
    first = nodes["first"]  # id from the file's stem
    assert first.title == "First" and first.writes == ("out/a.txt",) and first.retries == 0
    assert first.depends_on == ()  # depends_on = [] replaces the implicit chain, as in TOML
    assert first.body == "Say hello.\n" and first.source_file == "first.md"
    assert first.body_sha256 == hashlib.sha256(b"Say hello.\n").hexdigest()
    t02 = nodes["T02"]
    assert t02.command == ("python3", "-c", "pass") and t02.timeout == 30.0
    assert t02.metadata == {"owner": "alice"} and t02.depends_on == ("first",)
    assert t02.body == "Do the second thing.\n"
    assert nodes["T03"].body == "third\n" and nodes["T03"].depends_on == ("T02",)
    assert nodes["inline"].body == "" and nodes["inline"].body_sha256 == ""


def test_editing_only_the_body_changes_only_the_hash():
    base = {"first.md": YAML_TASK}
    edited = {"first.md": YAML_TASK.replace("Say hello.", "Say goodbye.")}
    a, b = (compile_with(f, plan=PLAN.replace('task_files = "tasks/*.md"', "")) for f in (base, edited))
    na, nb = a.node("first"), b.node("first")
    assert na.body_sha256 != nb.body_sha256
    assert (na.title, na.writes, na.command) == (nb.title, nb.writes, nb.command)
    assert a.node("inline") == b.node("inline")


def test_a_glob_matching_nothing_adds_no_task():
    graph = compile_with({"first.md": YAML_TASK}, {"tasks/*.md": ()})
    assert [n.id for n in graph.nodes if n.kind == "unit"] == ["inline", "first"]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("no frontmatter\n", "first.md:1", "starts with a frontmatter block"),
        ("+++\ntitle = 'x'\n", "first.md:1", "never closed"),
        ("+++\ntitle = 'x'\ntimeout = \n+++\n", "first.md:3", "malformed TOML frontmatter"),
        ("---\ntitle: x\nwrites: [a\n---\n", "first.md:4", "malformed YAML frontmatter"),
        ("---\n- a\n- b\n---\n", "first.md:2", "must be a table"),
        ("+++\ntitle = 'x'\n\ntimeout = -1\n+++\n", "first.md:4", "timeout must be a number of seconds > 0"),
        ("---\ntitle: x\ndepnds_on: [a]\n---\n", "first.md:3", "unknown key 'depnds_on'"),
        ("---\nid: bad id\n---\n", "first.md:2", "id must be a string matching"),
        ("---\nfile: other.md\n---\n", "first.md:2", "unknown key 'file'"),
        ("+++\nwrites = ['../up.txt']\n+++\n", "first.md:2", "escapes the plan root"),
    ],
)
def test_errors_name_the_task_file_and_the_line(text: str, where: str, problem: str):
    with pytest.raises(PlanError) as exc:
        compile_with({"first.md": text}, {"tasks/*.md": ()})
    assert exc.value.file == where, str(exc.value)
    assert problem in exc.value.problem


def test_a_duplicate_id_across_task_files_is_refused_at_the_second_file():
    files = {"first.md": YAML_TASK, "tasks/first.md": "+++\n+++\n"}
    with pytest.raises(PlanError) as exc:
        compile_with(files, {"tasks/*.md": ("tasks/first.md",)})
    assert exc.value.file.startswith("tasks/first.md:") and "duplicate task id" in exc.value.problem


def test_plan_level_errors_about_task_files_name_the_plan():
    with pytest.raises(PlanError, match=r"task file 'first.md' was not read"):
        compile_with({}, {"tasks/*.md": ()})
    bad_ref = PLAN.replace('file = "./first.md"', 'file = "first.md"\ntitle = "x"')
    with pytest.raises(PlanError, match=r"unknown key 'title'") as exc:
        compile_with({"first.md": YAML_TASK}, plan=bad_ref)
    assert exc.value.file == "plan.toml"
    with pytest.raises(PlanError, match="task_files must be a glob"):
        compile_with({"first.md": YAML_TASK}, plan=PLAN.replace('"tasks/*.md"', "3"))


def test_parse_keeps_the_body_verbatim_and_a_bom_is_ignored():
    tf = parse_task_file("t.md", "\ufeff+++\ntitle = 'x'\n+++\n\n# Heading\n\n+++ not a delimiter here\n")
    assert tf.fields == {"title": "x"}
    assert tf.body == "\n# Heading\n\n+++ not a delimiter here\n" and tf.body_line == 4
    assert tf.where("title") == "t.md:2"
