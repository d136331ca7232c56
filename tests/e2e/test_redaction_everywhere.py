"""Every shape of the secret corpus, through a real run, is stored and printed nowhere (issue 13).

A real ``uok run`` in a subprocess: a task prints the whole corpus to stdout
and stderr and fails on a line holding a password; the plan passes a token
in a task's ``env`` and a password on a gate's command line; the gate's
output ends in a private key whose header its tail cuts off; a bus message
carries a secret. Then the secret's bytes are looked for in the log, its
WAL, the task logs, the DuckDB copy, every export format and the output of
``uok status``, ``uok events`` and ``uok logs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import orjson

from tests.conftest import uok
from tests.secret_corpus import DB_PASS, SHAPES, TOKEN

SECRETS = sorted({s for _, _, s in SHAPES} | {TOKEN, DB_PASS})

TASK = """
import os, sys
from tests.secret_corpus import SHAPES, TOKEN, PASSWORD
assert os.environ["API_TOKEN"] == TOKEN, "the task must see the env value as the plan wrote it"
print("env ok")
for name, text, secret in SHAPES:
    print(text)
    print(text, file=sys.stderr)
print("fatal: could not log in with password=" + PASSWORD, file=sys.stderr)
sys.exit(1)
"""

GATE = """
import sys
from tests.secret_corpus import DB_PASS, PEM
if sys.argv[1] != "--password=" + DB_PASS:
    sys.exit(7)
for i in range(2000):
    print("checking item", i)
print(PEM, file=sys.stderr)
sys.exit(1)
"""


def plan(root: Path) -> Path:
    path = root / "plan.toml"
    path.write_text(
        '[plan]\nid = "red"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "leaky"\nretries = 0\n'
        f'command = ["{sys.executable}", "-c", {orjson.dumps(TASK).decode()}]\n'
        f'env = {{ API_TOKEN = "{TOKEN}" }}\n'
        '[[milestones.slices.tasks]]\nid = "gated"\nretries = 0\ndepends_on = []\n'
        f'command = ["{sys.executable}", "-c", "pass"]\n'
        f'gates = [{{ id = "verification", command = ["{sys.executable}", "-c", {orjson.dumps(GATE).decode()}, "--password={DB_PASS}"] }}]\n'
    )
    return path


def leaks(data: bytes | str, where: str) -> list[str]:
    blob = data.encode() if isinstance(data, str) else data
    return [f"{where}: {s[:8]}…" for s in SECRETS if s.encode() in blob]


def test_no_secret_of_the_corpus_is_stored_or_printed_anywhere(tmp_path: Path):
    root = tmp_path / "work"
    root.mkdir()
    db = tmp_path / "store" / "events.db"
    r = uok("run", str(plan(root)), "--db", str(db), "--quiet", "--workers", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    wal = db.with_name(db.name + "-wal")
    found = leaks(wal.read_bytes(), "-wal") if wal.exists() else []
    _, _, secret = SHAPES[0]
    r = uok("bus", "send", "--db", str(db), "agent-a", "agent-b", orjson.dumps({"note": f"API_KEY={secret}"}).decode())
    assert r.returncode == 0, r.stderr

    outputs = {
        "status": uok("status", "--db", str(db)),
        "events": uok("events", "--db", str(db), "--json"),
        "logs leaky": uok("logs", "--db", str(db), "leaky"),
        "logs leaky stderr": uok("logs", "--db", str(db), "leaky", "--stderr"),
        "sql": uok("sql", "--db", str(db), "SELECT * FROM events", "--json"),
    }
    for name, out in outputs.items():
        found += leaks(out.stdout + out.stderr, f"uok {name}")
    events = [orjson.loads(line)["event"] for line in outputs["events"].stdout.splitlines()]
    gate = [e for e in events if e["type"] == "GateRun" and e["unit_id"] == "gated"]
    assert (
        gate and gate[-1]["outcome"] == "fail" and gate[-1]["rationale"].startswith("exit code 1")
    )  # not 7: argv as written
    failed = [
        e for e in events if e["type"] == "UnitTransitioned" and e["unit_id"] == "leaky" and e["to_state"] == "failed"
    ]
    assert "[REDACTED:" in failed[0]["reason"]
    assert "env ok" in outputs["logs leaky"].stdout  # the task saw its env value as the plan wrote it
    [entered] = [e for e in events if e["type"] == "KernelEntered"]
    assert "[REDACTED:" in entered["plan_source"]

    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"export.{fmt}"
        r = uok("export", "--db", str(db), "--format", fmt, "--out", str(out))
        assert r.returncode == 0, r.stderr
        found += leaks(out.read_bytes(), f"export {fmt}")
        if fmt == "parquet":  # compressed: read it back as text too
            rows = duckdb.sql(f"SELECT * FROM read_parquet('{out}')").fetchall()
            found += leaks(repr(rows), "export parquet rows")

    for path in sorted((tmp_path / "store").rglob("*")):  # the log, its WAL, the DuckDB copy, the task logs
        if path.is_file():
            found += leaks(path.read_bytes(), str(path.relative_to(tmp_path)))
    assert (tmp_path / "store" / "events.db.duckdb").exists()
    assert found == [], "\n".join(found)
