"""The security gate scans what a turn really changed, not only what it declared.

Real git repositories (and a plain directory), the real CLI in a subprocess,
a real log: a task writes an AWS key id into a file it never declared.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from uok.adapters.changeset import ChangeTracker, WorkTree

from tests.conftest import uok

PIECES = ("AKIA", "Q7XKZ3M2", "P9R4T6W8")  # built at run time: the key is only in what the task writes
KEY = "".join(PIECES)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def init_repo(repo: Path) -> None:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    (repo / ".gitignore").write_text(".uok/\n")
    (repo / "README").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")


def sneaky_plan(root: Path) -> None:
    """``sneaky`` declares notes.txt but also writes the key into config/.env; ``clean`` writes ok.txt."""
    code = (
        f"import os; k={PIECES[0]!r}+{PIECES[1]!r}+{PIECES[2]!r}; os.makedirs('config', exist_ok=True); "
        "open('config/.env','w').write('AWS_ACCESS_KEY_ID='+k+'\\n'); open('notes.txt','w').write('notes\\n')"
    )
    (root / "plan.toml").write_text(
        '[plan]\nid = "sneak"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "sneaky"\nretries = 0\n'
        f'command = ["{sys.executable}", "-c", {orjson.dumps(code).decode()}]\n'
        'writes = ["notes.txt"]\ngates = ["security"]\n'
        '[[milestones.slices.tasks]]\nid = "clean"\ndepends_on = ["sneaky"]\n'
        f"command = [\"{sys.executable}\", \"-c\", \"open('ok.txt','w').write('fine\\\\n')\"]\n"
        'gates = ["security"]\n'
    )


def gate_runs(db: Path) -> dict[str, dict]:
    out = uok("events", "--db", str(db), "--json")
    rows = [orjson.loads(line)["event"] for line in out.stdout.splitlines()]
    return {e["unit_id"]: e for e in rows if e["type"] == "GateRun"}


@pytest.mark.parametrize("in_git", [True, False], ids=["git", "plain-directory"])
def test_a_key_in_an_undeclared_file_fails_the_security_gate(tmp_path: Path, in_git: bool):
    root = tmp_path / "repo"
    if in_git:
        init_repo(root)
    else:
        root.mkdir()
    sneaky_plan(root)
    db = root / ".uok" / "events.db"
    r = uok("run", str(root / "plan.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    assert KEY in (root / "config" / ".env").read_text()  # the key really was planted, undeclared
    runs = gate_runs(db)
    bad = runs["sneaky"]
    assert bad["outcome"] == "fail" and bad["failure_class"] == "policy"
    assert [(f["file"], f["kind"]) for f in bad["findings"]] == [("config/.env", "AWS Access Key")]
    assert KEY not in orjson.dumps(bad).decode()
    assert "clean" not in runs  # it depends on the failed unit: never ran


def test_the_gate_passes_a_clean_change_set_and_names_its_size(tmp_path: Path):
    root = tmp_path / "repo"
    init_repo(root)
    (root / "plan.toml").write_text(
        '[plan]\nid = "ok"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "t"\n'
        f"command = [\"{sys.executable}\", \"-c\", \"open('a.txt','w').write('a'); open('b.txt','w').write('b')\"]\n"
        'gates = ["security"]\n'
    )
    db = root / ".uok" / "events.db"
    r = uok("run", str(root / "plan.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    run = gate_runs(db)["t"]
    assert run["outcome"] == "pass" and "2 scanned file(s), 2 changed in the turn" in run["rationale"]


def test_change_sets_in_git_see_untracked_modified_and_deleted_and_never_the_log(tmp_path: Path):
    root = tmp_path / "repo"
    init_repo(root)
    (root / "gone.txt").write_text("x\n")
    git(root, "add", "gone.txt")
    git(root, "commit", "-q", "-m", "gone")
    (root / "dirty.txt").write_text("the user's own change\n")  # before the turn: not the turn's
    (root / ".uok").mkdir()
    tracker = ChangeTracker(WorkTree(root, exclude=[root / ".uok" / "events.db"]))
    tracker.begin("r:1")
    (root / "README").write_text("changed\n")
    (root / "new" / "deep").mkdir(parents=True)
    (root / "new" / "deep" / "file.txt").write_text("new\n")
    (root / "gone.txt").unlink()
    (root / ".uok" / "events.db").write_text("log\n")
    cs = tracker.changes("r:1")
    assert cs is not None
    assert cs.changed == ("README", "new/deep/file.txt") and cs.deleted == ("gone.txt",)
    assert git(root, "status", "--porcelain") != ""  # the real index is untouched
    assert "dirty.txt" in git(root, "status", "--porcelain", "--untracked-files=all")


def test_concurrent_turns_keep_each_others_declared_files_out(tmp_path: Path):
    root = tmp_path / "plain"
    root.mkdir()
    writes = {"a": ["a.txt"], "b": ["b.txt"]}
    tracker = ChangeTracker(WorkTree(root), writes=lambda u: writes[u])
    tracker.begin("r:1", writes["a"])
    tracker.begin("r:2", writes["b"])
    for name in ("a.txt", "b.txt", "stray.txt"):
        (root / name).write_text(name)
    one, two = tracker.changes("r:1"), tracker.changes("r:2")
    assert one is not None and two is not None
    assert one.changed == ("a.txt", "stray.txt") and two.changed == ("b.txt", "stray.txt")
