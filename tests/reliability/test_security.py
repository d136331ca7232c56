"""Security properties, end to end through ``uok run``.

* A task that prints a (fake) RSA private key and an AWS access key id, on
  stdout and stderr, also with the key straddling the start of the stored
  output tail: the secret's text is in neither the database file nor its
  WAL, the redaction marker with the secret's fingerprint is.
* Logs are created owner-only (0600: the file, its -wal and -shm, even
  under ``umask 000``), and a directory uok creates for them is 0700.
* Commands run without a shell unless the task says ``shell = true``.
* A plan's ``cwd``/``writes`` stay inside the plan root unless
  ``allow_outside_root``; the executor runs the task where the plan says.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from uok.adapters.secrets import secret_fingerprint
from uok.domain.plan import PlanError, compile_plan

from tests.conftest import ROOT, uok
from tests.reliability.support import run_cli

pytestmark = pytest.mark.reliability

_rng = random.Random(7)
KEY_BODY = [base64.b64encode(bytes(_rng.randrange(256) for _ in range(48))).decode() for _ in range(25)]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----"
AWS_KEY = "AKIA" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))

# The key text lives only in leak.py, never in the plan: the plan's source is itself recorded.
LEAK = f"""
import sys
key = {PRIVATE_KEY!r}
aws = {AWS_KEY!r}
where = sys.argv[1]
if where == "plain":
    print("deploying with", aws)
    print(key)
    print(key, file=sys.stderr)
    print("aws_access_key_id =", aws, file=sys.stderr)
elif where == "straddle":
    # the key, then 3000 bytes: the last 4 KiB start in the middle of the key's body
    print(key)
    print("y" * 3000)
"""


def plan_with(tasks: str, plan_id: str = "sec") -> str:
    return f'[plan]\nid = "{plan_id}"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n' + tasks


def db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def test_secrets_printed_by_a_task_never_reach_the_log(tmp_path: Path):
    (tmp_path / "leak.py").write_text(LEAK)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        plan_with(
            f'[[milestones.slices.tasks]]\nid = "plain"\ncommand = ["{sys.executable}", "leak.py", "plain"]\n'
            f'[[milestones.slices.tasks]]\nid = "straddle"\ncommand = ["{sys.executable}", "leak.py", "straddle"]\n'
        )
    )
    db = tmp_path / "sec.db"
    env = {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    raw = db_bytes(db)
    assert raw, "no database written"
    for line in KEY_BODY:
        assert line.encode() not in raw, "a line of the private key reached the database file"
        assert line[:24].encode() not in raw
    assert AWS_KEY.encode() not in raw
    assert b"PRIVATE KEY-----" not in raw.replace(b"[REDACTED:Private Key", b"")  # not even the armour
    r = uok("events", "--db", str(db), "--json")
    rows = [orjson.loads(line)["event"] for line in r.stdout.splitlines()]
    outs = {e["unit_id"]: e for e in rows if e["type"] == "ExecutionFinished"}
    assert f"[REDACTED:AWS Access Key:{secret_fingerprint(AWS_KEY)}]" in outs["plain"]["stdout_tail"]
    assert (
        "[REDACTED:Private Key:" in outs["plain"]["stdout_tail"]
        and "[REDACTED:Private Key:" in outs["plain"]["stderr_tail"]
    )
    assert "deploying with" in outs["plain"]["stdout_tail"]  # the rest of the output is kept
    assert outs["straddle"]["stdout_tail"].rstrip().endswith("y" * 100)
    assert not any(line[:24] in outs["straddle"]["stdout_tail"] for line in KEY_BODY)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_logs_are_owner_only_even_under_umask_000(tmp_path: Path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        plan_with(
            '[[milestones.slices.tasks]]\nid = "wait"\n'
            f'command = ["{sys.executable}", "-c", "import time,pathlib; pathlib.Path(\'running\').touch(); time.sleep(1.5)"]\n'
        )
    )
    db = tmp_path / "fresh" / "dir" / "events.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        umask=0,
    )
    deadline = time.time() + 30
    while not (tmp_path / "running").exists() and time.time() < deadline:
        time.sleep(0.02)
    live = {p.name: _mode(p) for p in db.parent.iterdir()}  # while the run holds the WAL open
    assert proc.wait(timeout=30) == 0
    assert live.get("events.db") == 0o600, live
    assert live.get("events.db-wal") == 0o600 and live.get("events.db-shm") == 0o600, live
    assert _mode(db) == 0o600
    assert _mode(db.parent) == 0o700, oct(_mode(db.parent))


def test_commands_run_without_a_shell_unless_asked(tmp_path: Path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        plan_with(
            '[[milestones.slices.tasks]]\nid = "argv"\n'
            'command = ["sh", "-c", "printf \'%s\' \\"$0\\" > argv.txt", "$(touch pwned); `touch pwned2`; echo $HOME"]\n'
            '[[milestones.slices.tasks]]\nid = "literal"\n'
            f'command = ["{sys.executable}", "-c", "import sys; open(\'lit.txt\',\'w\').write(sys.argv[1])", "; touch pwned3 && echo $((1+1))"]\n'
            '[[milestones.slices.tasks]]\nid = "shell"\nshell = true\ncommand = "echo $((40+2)) > shell.txt"\n'
        )
    )
    r = uok("run", str(plan), "--db", str(tmp_path / "x.db"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "argv.txt").read_text() == "$(touch pwned); `touch pwned2`; echo $HOME"
    assert (tmp_path / "lit.txt").read_text() == "; touch pwned3 && echo $((1+1))"
    assert not list(tmp_path.glob("pwned*"))
    assert (tmp_path / "shell.txt").read_text().strip() == "42"


@pytest.mark.parametrize(
    "cwd", ["..", "../x", "a/../../b", "/tmp", "/", "C:\\\\Windows", "\\\\\\\\server\\\\share", "./.."]
)
def test_cwd_and_writes_cannot_escape_the_plan_root(cwd: str):
    for key in ("cwd", "writes"):
        value = f'"{cwd}"' if key == "cwd" else f'["{cwd}"]'
        source = plan_with(f'[[milestones.slices.tasks]]\nid = "t"\ncommand = ["true"]\n{key} = {value}\n')
        with pytest.raises(PlanError, match="plan root"):
            compile_plan(source, filename="p.toml")
        allowed = source.replace("[plan]\n", "[plan]\nallow_outside_root = true\n")
        compile_plan(allowed, filename="p.toml")  # explicitly allowed: compiles


def test_the_task_runs_where_the_plan_says(tmp_path: Path):
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        plan_with(
            '[[milestones.slices.tasks]]\nid = "here"\ncwd = "sub/./dir"\n'
            f'command = ["{sys.executable}", "-c", "import os; open(\'where.txt\',\'w\').write(os.getcwd())"]\n'
        )
    )
    r = uok("run", str(plan), "--db", str(tmp_path / "x.db"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sub" / "dir" / "where.txt").read_text() == str((tmp_path / "sub" / "dir").resolve())


# ----------------------------------------------------------------- outputs: modes, no clobbering, sql read-only


def _run_umask0(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "uok", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        umask=0,
        timeout=120,
    )


@pytest.fixture
def small_log(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_with('[[milestones.slices.tasks]]\nid = "a"\n[[milestones.slices.tasks]]\nid = "b"\n'))
    db = tmp_path / "log.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    return db


def test_exports_and_the_analytical_copy_are_owner_only_under_umask_000(small_log: Path, tmp_path: Path):
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"audit.{fmt}"
        r = _run_umask0("export", "--db", str(small_log), "--format", fmt, "--out", str(out), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert _mode(out) == 0o600 and _mode(Path(f"{out}.manifest.json")) == 0o600, fmt
    copy = tmp_path / "copy.duckdb"
    r = _run_umask0("sql", "--db", str(small_log), "--copy", str(copy), "SELECT count(*) FROM events", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _mode(copy) == 0o600


def test_no_output_option_replaces_an_event_log(small_log: Path, tmp_path: Path):
    other = tmp_path / "other.db"
    other.write_bytes(small_log.read_bytes())
    before = {p: p.read_bytes() for p in (small_log, other)}
    for args in (
        ["export", "--out", str(small_log)],
        ["export", "--out", str(other)],
        ["sql", "--copy", str(small_log), "SELECT 1"],
        ["sql", "--copy", str(other), "SELECT 1"],
    ):
        r = uok(*args, "--db", str(small_log))
        assert r.returncode == 2 and "refusing to overwrite" in r.stderr, (args, r.stderr)
    assert {p: p.read_bytes() for p in before} == before


HOSTILE_SQL = [
    "DELETE FROM events",
    "INSERT INTO events SELECT * FROM events",
    "UPDATE events SET topic = 'x'",
    "DROP TABLE events",
    "CREATE TABLE t AS SELECT 1",
    "ATTACH '{db}' AS log (TYPE sqlite)",
    "COPY (SELECT * FROM events) TO '{dump}'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '{db}'",
    "INSTALL sqlite",
    "PRAGMA enable_external_access=true",
    "SET enable_external_access = true",
    "SELECT 1; DELETE FROM events",
    "EXPORT DATABASE '{dump}'",
]


def test_uok_sql_stays_read_only(small_log: Path, tmp_path: Path):
    copy = tmp_path / "copy.duckdb"
    r = uok("sql", "--db", str(small_log), "--copy", str(copy), "SELECT count(*) AS n FROM events", "--json")
    assert r.returncode == 0, r.stderr
    count = r.stdout
    log_before = small_log.read_bytes()
    dump = tmp_path / "dump.out"
    for q in HOSTILE_SQL:  # in-process: 14 interpreter start-ups saved; a traceback would fail the test
        q = q.format(db=small_log, dump=dump)
        code, _out, err = run_cli(["sql", "--db", str(small_log), "--copy", str(copy), q])
        assert code == 2 and err.startswith("uok: "), (q, code, err)
    assert small_log.read_bytes() == log_before
    assert not dump.exists() and not list(tmp_path.glob("dump*"))
    r = uok("sql", "--db", str(small_log), "--copy", str(copy), "SELECT count(*) AS n FROM events", "--json")
    assert r.returncode == 0 and r.stdout == count  # the copy still answers, unchanged


def test_uok_serve_binds_loopback_only_by_default(small_log: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "serve", "--db", str(small_log), "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = next(w for w in line.split() if w.startswith("http://"))
        host, port = url.removeprefix("http://").split("/")[0].rsplit(":", 1)
        assert host == "127.0.0.1", line
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert resp.status == 200 and b"# TYPE" in resp.read()
        # the kernel's own table of listening sockets: this port, on 127.0.0.1 only
        listening = [
            ln.split()[1]
            for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if ln.split()[3] == "0A" and int(ln.split()[1].split(":")[1], 16) == int(port)
        ]
        assert listening == [f"0100007F:{int(port):04X}"], listening
        assert not [
            ln
            for ln in Path("/proc/net/tcp6").read_text().splitlines()[1:]
            if ln.split()[3] == "0A" and int(ln.split()[1].split(":")[1], 16) == int(port)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
