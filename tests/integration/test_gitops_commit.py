"""``uok run --gitops commit`` commits exactly each unit's work (issue 13).

Real git repositories with ``.uok/`` git-ignored (the default layout: the
log inside the repository), the real CLI in a subprocess, a real log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import uok

PIECES = ("AKIA", "Q7XKZ3M2", "P9R4T6W8")  # the key exists only in what a task writes
KEY = "".join(PIECES)
HEADER = '[plan]\nid = "g"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def task(tid: str, code: str, *, extra: str = "") -> str:
    return f'[[milestones.slices.tasks]]\nid = "{tid}"\ncommand = ["{sys.executable}", "-c", {orjson.dumps(code).decode()}]\n{extra}'


def write(name: str, text: str = "") -> str:
    return f"import os; os.makedirs(os.path.dirname({name!r}) or '.', exist_ok=True); open({name!r},'w').write({(text or name)!r})"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    (repo / ".gitignore").write_text(".uok/\n")
    (repo / "README").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def run(repo: Path, plan: str, *extra: str) -> subprocess.CompletedProcess:
    (repo / "plan.toml").write_text(HEADER + plan)
    return uok("run", "plan.toml", "--quiet", "--gitops", "commit", *extra, cwd=repo)  # the log: ./.uok/events.db


def commits(repo: Path, since: str) -> list[tuple[str, list[str]]]:
    """(unit trailer, files) of each commit after ``since``, oldest first."""
    out = []
    for sha in git(repo, "rev-list", "--reverse", f"{since}..HEAD").split():
        unit = git(repo, "log", "-1", "--format=%(trailers:key=Uok-Unit,valueonly)", sha).strip()
        files = git(repo, "show", "--name-only", "--format=", sha).split()
        out.append((unit, sorted(files)))
    return out


def events(repo: Path) -> list[dict]:
    r = uok("events", "--json", cwd=repo)
    return [orjson.loads(line)["event"] for line in r.stdout.splitlines()]


def test_two_units_make_two_commits_each_with_only_its_files_in_the_default_layout(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "README").write_text("the user's own edit, not committed\n")  # pre-existing, uncommitted
    (repo / "scratch.txt").write_text("the user's scratch file\n")
    plan = task("one", write("src/one.py")) + task("two", write("two.txt") + "; " + write("docs/two.md"))
    r = run(repo, plan)
    assert r.returncode == 2 and "uncommitted change(s)" in r.stderr and "--allow-dirty" in r.stderr
    assert git(repo, "rev-parse", "HEAD") == base and not (repo / "two.txt").exists()  # refused before any unit ran

    r = run(repo, plan, "--allow-dirty")
    assert r.returncode == 0, r.stdout + r.stderr
    assert commits(repo, base) == [("one", ["src/one.py"]), ("two", ["docs/two.md", "two.txt"])]
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, capture_output=True, text=True
    )
    assert status.stdout.splitlines() == [
        " M README",
        "?? plan.toml",
        "?? scratch.txt",
    ]  # the user's changes are still there, uncommitted; nothing of .uok/ anywhere
    [entered] = [e for e in events(repo) if e["type"] == "KernelEntered" and e["flags"].get("allow_dirty")]
    assert entered["flags"]["publish_gate"] == "gitops"


def test_a_failed_attempts_edits_are_gone_from_the_tree_its_retry_starts_from(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    code = (
        "import os, sys\n"
        "if os.environ['UOK_ATTEMPT'] == '1':\n"
        "    open('junk.txt', 'w').write('half-done')\n"
        "    open('README', 'a').write('broken edit')\n"
        "    sys.exit(1)\n"
        "seen = 'junk=%s readme=%r' % (os.path.exists('junk.txt'), open('README').read())\n"
        "open('result.txt', 'w').write(seen)\n"
    )
    r = run(repo, task("flaky", code, extra="retries = 1\n"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / "result.txt").read_text() == "junk=False readme='hello\\n'"
    assert commits(repo, base) == [("flaky", ["result.txt"])]
    assert not (repo / "junk.txt").exists() and (repo / "README").read_text() == "hello\n"
    [discard] = [e for e in events(repo) if e["type"] == "GitTransactionRecorded" and e["stage"] == "discard"]
    assert discard["status"] == "ok" and discard["detail"]["removed"] == ["junk.txt"]
    assert discard["detail"]["restored"] == ["README"]
    kept = discard["detail"]["ref"]
    assert kept.startswith("refs/uok/attempts/") and git(repo, "show", f"{kept}:junk.txt") == "half-done"


def test_an_aws_key_in_an_undeclared_file_is_never_committed(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    leak = (
        f"k={PIECES[0]!r}+{PIECES[1]!r}+{PIECES[2]!r}; open('.env','w').write('AWS_ACCESS_KEY_ID='+k+'\\n'); "
        + write("app.py")
    )
    plan = task("leaky", leak, extra='retries = 0\nwrites = ["app.py"]\n') + task(
        "leaky-gated",
        leak.replace("app.py", "b.py").replace(".env", ".env.local"),
        extra='retries = 0\ndepends_on = []\ngates = ["security"]\n',
    )
    r = run(repo, plan)
    assert r.returncode == 1, r.stdout + r.stderr
    assert git(repo, "rev-parse", "HEAD") == base  # nothing committed at all
    assert KEY not in git(repo, "log", "--all", "-p") and KEY in (repo / ".env").read_text()
    runs = {(e["unit_id"], e["gate_id"]): e for e in events(repo) if e["type"] == "GateRun"}
    publish = runs[("leaky", "gitops")]  # no security gate listed: the publish gate's own scan refuses it
    assert publish["outcome"] == "fail" and publish["failure_class"] == "policy"
    assert "AWS Access Key at .env:1" in publish["rationale"] and "not committed" in publish["rationale"]
    assert runs[("leaky-gated", "security")]["outcome"] == "fail"  # the security gate sees the undeclared file
    assert ("leaky-gated", "gitops") not in runs  # a failed gate ends the pass before the publish


def test_parallel_units_with_declared_writes_commit_only_their_own_files(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    slow = "import time; time.sleep(0.6); "
    plan = task("a", slow + write("a/1.txt") + "; " + write("a/2.txt"), extra='writes = ["a/1.txt", "a/2.txt"]\n')
    plan += task("b", write("b.txt"), extra='writes = ["b.txt"]\n')
    r = run(repo, plan, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(commits(repo, base)) == [("a", ["a/1.txt", "a/2.txt"]), ("b", ["b.txt"])]
    [entered] = [e for e in events(repo) if e["type"] == "KernelEntered"]
    assert entered["workers"] == 2 and "gitops_workers" not in entered["flags"]


def test_units_without_declared_writes_run_one_at_a_time(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    r = run(repo, task("a", write("a.txt")) + task("b", write("b.txt")), "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(commits(repo, base)) == [("a", ["a.txt"]), ("b", ["b.txt"])]
    [entered] = [e for e in events(repo) if e["type"] == "KernelEntered"]
    assert entered["workers"] == 1 and "declare no writes" in entered["flags"]["gitops_workers"]


def test_each_commit_is_pushed_to_the_configured_remote_and_a_rejected_push_fails_the_unit(repo: Path, tmp_path: Path):
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    (repo / "uok.toml").write_text('[uok.gitops]\npush_remote = "origin"\n')
    git(repo, "add", "uok.toml")
    git(repo, "commit", "-q", "-m", "config")
    r = run(repo, task("one", write("one.txt")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert git(bare, "log", "-1", "--format=%(trailers:key=Uok-Unit,valueonly)", "main").strip() == "one"
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'push rejected by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    r = run(repo, task("two", write("two.txt"), extra="retries = 0\n"))
    assert r.returncode == 1, r.stdout + r.stderr
    runs = [e for e in events(repo) if e["type"] == "GateRun" and e["unit_id"] == "two"]
    assert (
        runs[-1]["gate_id"] == "gitops"
        and runs[-1]["outcome"] == "fail"
        and "git push origin main failed" in runs[-1]["rationale"]
    )
