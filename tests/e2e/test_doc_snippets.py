"""The Python snippets in the docs run as written (issue 11 §9: the snippet in
docs/audit.md failed with ``NameError: name 'manifest' is not defined``).

Each ```python block of the listed pages is executed, in a directory where
the files it names exist (an export of a real run's log)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, uok
from tests.run_support import task_plan

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[str]:
    return BLOCK.findall((ROOT / page).read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A directory holding audit.jsonl and its manifest, exported from a real run."""
    root = tmp_path_factory.mktemp("snippets")
    plan = task_plan(root / "plan.toml", [("a", "pass"), ("b", "print('hello')")], plan_id="doc")
    db = root / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    assert uok("export", "--out", str(root / "audit.jsonl"), "--db", str(db)).returncode == 0
    return root


@pytest.mark.parametrize("index", range(len(blocks("docs/audit.md"))))
def test_the_python_snippets_of_the_audit_page_run(exported: Path, index: int):
    code = blocks("docs/audit.md")[index]
    r = subprocess.run([sys.executable, "-c", code], cwd=exported, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_a_tampered_export_fails_the_audit_snippet(exported: Path, tmp_path: Path):
    """The snippet checks something: a changed payload byte makes it fail."""
    for name in ("audit.jsonl", "audit.jsonl.manifest.json"):
        (tmp_path / name).write_bytes((exported / name).read_bytes())
    data = (tmp_path / "audit.jsonl").read_text()
    (tmp_path / "audit.jsonl").write_text(data.replace('"unit_id\\":\\"a\\"', '"unit_id\\":\\"A\\"', 1))
    assert (tmp_path / "audit.jsonl").read_text() != data
    (code,) = blocks("docs/audit.md")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "AssertionError" in r.stderr
