"""Breakers that protect without destroying work (issue 13): scoped per plan,
holding units while open and dispatching them again at the half-open probe.

Real runs of the CLI in a subprocess on one real log, real gate commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from tests.conftest import uok


def plan(root: Path, plan_id: str, gate: str, *, tasks: int, retries: int = 0, config: str = "") -> Path:
    d = root / plan_id
    d.mkdir(parents=True)
    if config:
        (d / "uok.toml").write_text(config)
    body = f'[plan]\nid = "{plan_id}"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for i in range(tasks):
        body += (
            f'[[milestones.slices.tasks]]\nid = "t{i}"\nretries = {retries}\ndepends_on = []\n'
            f'command = ["{sys.executable}", "-c", "pass"]\n'
            f'gates = [{{ id = "verification", command = ["{sys.executable}", "-c", {orjson.dumps(gate).decode()}] }}]\n'
        )
    (d / "plan.toml").write_text(body)
    return d / "plan.toml"


def events(db: Path) -> list[dict]:
    return [orjson.loads(line)["event"] for line in uok("events", "--db", str(db), "--json").stdout.splitlines()]


def test_one_plans_failing_gate_does_not_fail_another_plans_units(tmp_path: Path):
    db = tmp_path / "log.db"
    bad = plan(tmp_path, "bad", "raise SystemExit(1)", tasks=3)
    good = plan(tmp_path, "good", "pass", tasks=2)
    r = uok("run", str(bad), "--db", str(db), "--quiet", "--workers", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    opened = [e for e in events(db) if e["type"] == "BreakerTransitioned" and e["to_state"] == "open"]
    assert [e["breaker"] for e in opened] == ["bad/verification"]  # the bad plan's own breaker
    r = uok("run", str(good), "--db", str(db), "--quiet", "--workers", "1")
    assert r.returncode == 0, r.stdout + r.stderr  # its units complete: nothing shared with "bad"
    runs = [e for e in events(db) if e["type"] == "GateRun" and e["gate_id"] == "verification"]
    assert {e["outcome"] for e in runs if e["breaker"] == "good/verification"} == {"pass"}
    shown = orjson.loads(uok("breakers", "--db", str(db), "--json").stdout)
    by_key = {b["breaker"]: b for b in shown["breakers"]}
    assert by_key["bad/verification"]["state"] == "open" and by_key["bad/verification"]["scope"] == "bad"
    assert by_key["good/verification"]["state"] == "closed"


def test_a_unit_held_by_its_plans_open_breaker_runs_at_the_half_open_probe_and_completes(tmp_path: Path):
    counter = tmp_path / "calls"
    gate = (  # fails its first two calls (one unit's attempt and its retry), passes afterwards
        f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) if p.exists() else 0; "
        "p.write_text(str(n + 1)); sys.exit(1 if n < 2 else 0)"
    )
    config = "[uok.breakers]\nfailure_threshold = 1\nopen_seconds = 1\n"
    db = tmp_path / "log.db"
    r = uok(
        "run",
        str(plan(tmp_path, "p", gate, tasks=2, retries=1, config=config)),
        "--db",
        str(db),
        "--quiet",
        "--workers",
        "1",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    log = events(db)
    held = [e for e in log if e["type"] == "BreakerHeld"]
    assert held and all(e["breaker"] == "p/verification" and e["until"] for e in held)
    assert [e for e in log if e["type"] == "BreakerDue"]  # the shell's timer woke the run
    probes = [e for e in log if e["type"] == "GateRequested" and e["probe"]]
    assert len(probes) == 1
    moves = [(e["from_state"], e["to_state"]) for e in log if e["type"] == "BreakerTransitioned"]
    assert moves == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    finals = {
        e["unit_id"]: e["to_state"]
        for e in log
        if e["type"] == "UnitTransitioned" and e["to_state"] in ("completed", "failed", "blocked")
    }
    assert finals == {"t0": "completed", "t1": "completed", "complete-slice:M1/S1": "completed"} or all(
        v == "completed" for k, v in finals.items()
    )
    requeued = [
        e
        for e in log
        if e["type"] == "UnitTransitioned"
        and e["to_state"] == "queued"
        and e["reason"].startswith("held: breaker p/verification")
    ]
    assert requeued  # held, queued again with its attempt unspent: not failed for good
    replay = uok("replay", "--db", str(db), "--all")
    assert replay.returncode == 0, replay.stdout + replay.stderr
