"""The code snippets of the README and of docs/*.md run as written (issue 11
§9: the snippet in docs/audit.md failed with ``NameError: name 'manifest'
is not defined``; a doc that drifts from the CLI must fail a test).

What a snippet is, and how one is marked as not run (with its reason), is
in :mod:`tests.doc_snippets`. For each page, its runnable snippets run in
order, in one fresh directory holding a copy of ``fixtures/plans`` and the
files the docs call ``plan.toml`` (a two-task plan) and ``uok.toml`` (an
empty config), with ``uok`` on the PATH and a fresh log, ``.uok/events.db``,
holding one run of ``fixtures/plans/demo.toml`` (the README starts with no
log: its first snippet is that run; see :data:`SETUP`). A run id in a
snippet (``RUN_ID``, ``r…`` or a recorded one such as
``r20261124201536-b6686e``) stands for the run it names in the docs; the
snippet runs with the id of the first run of that directory's log (the
one a walkthrough starts with).
Shell snippets run under ``bash -e -o pipefail``; outputs shown in
transcripts are not compared.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, uok
from tests.doc_snippets import PAGES, Snippet, all_snippets, parse_uok, snippets, uok_invocations
from tests.run_support import task_plan

SNIPPETS = all_snippets()
RUN_ID = re.compile(r"\bRUN_ID\b|\br…(?=[\s:]|$)|\br\d{14}-[0-9a-f]{6}\b")
RUNNABLE_PAGES = [p for p in PAGES if any(not s.not_run for s in snippets(p))]
DEMO = "uok run fixtures/plans/demo.toml --quiet"
SETUP = {
    "README.md": "",  # its first snippet runs the demo plan
    "docs/audit.md": f"{DEMO} && uok export --out audit.jsonl",  # its snippet reads an export
}
"""What runs before a page's snippets (default: one run of the demo plan)."""


def test_every_snippet_runs_or_says_why_not():
    """A marker is ``not-run: <reason>``; anything else is a typo that
    would otherwise skip a snippet silently."""
    assert len(SNIPPETS) > 30
    bad = [s.id for s in SNIPPETS if s.marker and not s.not_run]
    assert bad == [], f"snippet markers that are not 'not-run: <reason>': {bad}"
    assert RUNNABLE_PAGES, "no page has a snippet to run"


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.lang == "shell"], ids=lambda s: s.id)
def test_every_uok_command_of_a_shell_snippet_parses(snippet: Snippet):
    """Run or not, each ``uok`` call of a shell snippet is a valid command
    line: a renamed command or option, or a bad choice, fails here."""
    calls = [args for line in snippet.commands() for args in uok_invocations(line)]
    for args in calls:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parse_uok(args)
        except SystemExit as exc:
            assert exc.code in (0, None), f"{snippet.id}: uok {' '.join(args)}: {err.getvalue().strip()}"


def _workspace(root: Path) -> Path:
    ws = root / "ws"
    ws.mkdir()
    shutil.copytree(FIXTURES / "plans", ws / "fixtures" / "plans", ignore=shutil.ignore_patterns("out"))
    task_plan(ws / "plan.toml", [("hello", "print('hello')"), ("world", "print('world')")], plan_id="hello")
    (ws / "uok.toml").write_text("")
    return ws


def _env(ws: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("UOK_DB", None)
    env["HOME"] = str(ws)  # nothing the snippets write lands in the real home
    return env


def _first_run(ws: Path, env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "uok", "status", "--json"], cwd=ws, env=env, capture_output=True, text=True, timeout=120
    )
    ids = re.findall(r'"run_id":\s*"(r[^"]+)"', r.stdout)
    return ids[0] if ids else "no-run-yet"


def _run(snippet: Snippet, ws: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = snippet.script()
    if snippet.lang == "shell":
        if RUN_ID.search(script):
            script = RUN_ID.sub(_first_run(ws, env), script)
        argv = ["bash", "-e", "-o", "pipefail", "-c", script]
    else:
        argv = [sys.executable, "-c", script]
    return subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_the_runnable_snippets_of_a_page_run_on_a_fresh_log(page: str, tmp_path: Path):
    ws = _workspace(tmp_path)
    env = _env(ws)
    setup = SETUP.get(page, DEMO)
    if setup:
        r = subprocess.run(["bash", "-e", "-c", setup], cwd=ws, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    ran = 0
    for snippet in snippets(page):
        if snippet.not_run:
            continue
        r = _run(snippet, ws, env)
        assert r.returncode == 0, (
            f"{snippet.id} exited {r.returncode}:\n{snippet.script()}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        )
        ran += 1
    assert ran > 0


# ---------------------------------------------------------------- the audit snippet checks something


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A directory holding audit.jsonl and its manifest, exported from a real run."""
    root = tmp_path_factory.mktemp("snippets")
    plan = task_plan(root / "plan.toml", [("a", "pass"), ("b", "print('hello')")], plan_id="doc")
    db = root / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    assert uok("export", "--out", str(root / "audit.jsonl"), "--db", str(db)).returncode == 0
    return root


def test_a_tampered_export_fails_the_audit_snippet(exported: Path, tmp_path: Path):
    """The snippet checks something: a changed payload byte makes it fail."""
    for name in ("audit.jsonl", "audit.jsonl.manifest.json"):
        (tmp_path / name).write_bytes((exported / name).read_bytes())
    data = (tmp_path / "audit.jsonl").read_text()
    (tmp_path / "audit.jsonl").write_text(data.replace('"unit_id\\":\\"a\\"', '"unit_id\\":\\"A\\"', 1))
    assert (tmp_path / "audit.jsonl").read_text() != data
    (code,) = [s.body for s in snippets("docs/audit.md") if s.lang == "python"]
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "AssertionError" in r.stderr
