"""Bad input handled as documented (issue 11 §7 and §9): exit 2 for input,
3 for integrity, one ``uok:`` prefix, never an internal error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import apsw
import pytest

from tests.conftest import uok
from tests.reliability.support import run_cli
from tests.run_support import task_plan


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bad")
    plan = task_plan(root / "plan.toml", [("a", "pass"), ("b", "pass")], plan_id="bad")
    db = root / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--workers", "16")
    assert r.returncode == 0, r.stderr
    assert "--workers 16 is outside 1..8: running with 8 workers" in r.stderr  # a clamp is reported
    return plan, db


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("uok: ") and "uok: uok:" not in lines[0], err
    assert "internal error" not in err
    return lines[0]


def test_events_of_an_unknown_run_is_exit_2(log):
    code, out, err = run_cli(["events", "--run", "nosuch", "--db", str(log[1])])
    assert code == 2 and out == "" and "no run 'nosuch'" in one_error(err)


def test_export_to_a_missing_directory_is_exit_2(log, tmp_path: Path):
    code, _, err = run_cli(["export", "--out", str(tmp_path / "no" / "such" / "a.jsonl"), "--db", str(log[1])])
    assert code == 2 and "no directory" in one_error(err)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
def test_export_to_an_unwritable_directory_is_exit_2(log, tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i refused here")
    try:
        code, _, err = run_cli(["export", "--out", str(locked / "a.jsonl"), "--db", str(log[1])])
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=False)
    assert code == 2 and "cannot write" in one_error(err)


def test_the_export_format_follows_the_extension(log, tmp_path: Path):
    out = tmp_path / "audit.parquet"
    code, _, err = run_cli(["export", "--out", str(out), "--db", str(log[1])])
    assert code == 0, err
    assert out.read_bytes()[:4] == b"PAR1"
    code, _, err = run_cli(["export", "--out", str(tmp_path / "b.csv"), "--db", str(log[1])])
    assert code == 0 and (tmp_path / "b.csv").read_text().startswith("position,")
    code, _, err = run_cli(["export", "--out", str(tmp_path / "c.parquet"), "--format", "jsonl", "--db", str(log[1])])
    assert code == 2 and "contradicts" in one_error(err) and not (tmp_path / "c.parquet").exists()


@pytest.mark.parametrize(
    "command", [["status"], ["events"], ["run", "PLAN", "--quiet"], ["bus", "send", "a", "b", "{}"]]
)
def test_a_db_that_is_a_device_or_a_fifo_is_exit_2_and_creates_nothing(log, tmp_path: Path, command: list[str]):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = [str(log[0]) if a == "PLAN" else a for a in command]
    for target in ("/dev/null", str(fifo)):
        code, _, err = run_cli([*argv, "--db", target])
        assert code == 2, (target, err)
        assert "not a regular file" in one_error(err)
    assert not Path("/dev/null-journal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def test_verify_of_a_missing_export_is_exit_2_not_3(log, tmp_path: Path):
    code, _, err = run_cli(["verify", "--export", str(tmp_path / "nosuch.jsonl"), "--db", str(log[1])])
    assert code == 2 and "no such file" in one_error(err)


@pytest.mark.parametrize("command", ["state", "metrics", "breakers"])
def test_at_zero_means_before_the_first_event_for_every_command(log, command: str):
    code, _, err = run_cli([command, "--at", "0", "--db", str(log[1])])
    assert code == 0, err
    code, _, err = run_cli([command, "--at", "-1", "--db", str(log[1])])
    assert code == 2, err


def test_a_payload_stored_as_text_is_an_integrity_failure_naming_its_position(log, tmp_path: Path):
    db = tmp_path / "edited.db"
    shutil.copy(log[1], db)
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER events_no_update")  # what someone with the sqlite3 shell can do
    conn.execute("UPDATE events SET payload = CAST(payload AS TEXT) WHERE position = 5")
    conn.close()
    for command in (["verify"], ["events"], ["replay", "--all"]):
        code, _, err = run_cli([*command, "--db", str(db)])
        assert code == 3, (command, err)
        assert "position 5" in one_error(err) and "types uok wrote" in err
