"""The chaos monkey end to end: ``uok run --chaos SEED`` on real plans.

* The demo plan under chaos completes, and ``uok replay`` reports no
  divergence: every fault is in the log before its effect.
* A seed injects the same faults every time (rolls are keyed by unit,
  attempt and boundary, not by thread timing).
* Every fault is recoverable: at rate 1 with only partial failures, every
  attempt that can be retried is failed, and the plan still completes;
  a unit failed at dispatch never started its command.
* A gate attempt's partial failure is retried by the gate runner.
* Stress faults leave nothing behind; bad settings exit 2 and write
  nothing; without ``--chaos`` nothing is injected.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.conftest import FIXTURES, uok
from tests.reliability.support import assert_log_whole

pytestmark = pytest.mark.reliability


def events(db: Path) -> list[dict]:
    r = uok("events", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return [orjson.loads(line)["event"] for line in r.stdout.splitlines()]


def injections(rows: list[dict]) -> list[dict]:
    return [e for e in rows if e["type"] == "ChaosInjected"]


def demo_copy(dst: Path) -> Path:
    shutil.copytree(FIXTURES / "plans", dst, ignore=shutil.ignore_patterns("out", "bad"))
    return dst / "demo.toml"


def replay_all(db: Path) -> str:
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no divergence" in r.stdout
    return r.stdout


def test_chaotic_demo_run_completes_and_replays_without_divergence(tmp_path: Path):
    plan = demo_copy(tmp_path / "a")
    db = tmp_path / "a.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--chaos", "7", "--chaos-rate", "0.5")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = events(db)
    faults = injections(rows)
    assert len(faults) >= 5 and {f["fault"] for f in faults} >= {"partial-failure"}, faults
    said = [line for line in r.stderr.splitlines() if line.startswith("uok: chaos #")]
    assert len(said) == len(faults)  # every fault logged to stderr, too
    entered = next(e for e in rows if e["type"] == "KernelEntered")
    assert entered["flags"]["chaos"]["seed"] == 7 and entered["flags"]["chaos"]["rate"] == 0.5
    for f in faults:  # a partial failure's consequence is decided right after it, from it
        if f["fault"] == "partial-failure":
            i = rows.index(f)
            failed = next(e for e in rows[i + 1 :] if e["type"] == "UnitTransitioned" and e["to_state"] == "failed")
            assert failed["unit_id"] == f["unit_id"] and "chaos monkey" in failed["reason"]
            assert failed["failure_class"] == "execution"
    assert rows[-1]["type"] == "KernelExited" and rows[-1]["status"] == "ok"
    assert_log_whole(db)
    replay_all(db)

    # the same seed on a fresh copy injects the same faults
    plan2 = demo_copy(tmp_path / "b")
    db2 = tmp_path / "b.db"
    assert uok("run", str(plan2), "--db", str(db2), "--quiet", "--chaos", "7", "--chaos-rate", "0.5").returncode == 0
    key = lambda f: (f["fault"], f["boundary"], f["unit_id"], f["gate_id"], f["attempt"], f["magnitude"])  # noqa: E731
    assert sorted(map(key, injections(events(db2)))) == sorted(map(key, faults))


def chain_plan(root: Path, n: int = 4, retries: int = 2, gates: str = "") -> Path:
    task = "import sys; open('starts.log','a').write(sys.argv[1] + '\\\\n')"
    root.mkdir(parents=True, exist_ok=True)
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "ch"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        + "".join(
            f'[[milestones.slices.tasks]]\nid = "t{i}"\nretries = {retries}\n'
            f'command = ["{sys.executable}", "-c", "{task}", "t{i}"]\n{gates}'
            for i in range(n)
        )
    )
    return plan


def test_every_fault_is_recoverable_even_at_rate_one(tmp_path: Path):
    plan = chain_plan(tmp_path / "p", n=4, retries=2)
    (tmp_path / "p" / "uok.toml").write_text('[uok.chaos]\nfaults = ["partial-failure"]\n')
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--chaos", "3", "--chaos-rate", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = events(db)
    faults = injections(rows)
    assert {f["fault"] for f in faults} == {"partial-failure"}
    done = [e for e in rows if e["type"] == "UnitTransitioned" and e["to_state"] == "completed"]
    assert {e["unit_id"] for e in done} >= {f"t{i}" for i in range(4)}
    for e in done:
        if e["unit_id"].startswith("t"):
            assert e["attempt"] == 3  # attempts 1 and 2 were failed by chaos, the last one never is
    # a unit failed at dispatch never started its command; one failed at finalize did
    starts = Counter((tmp_path / "p" / "starts.log").read_text().split())
    for i in range(4):
        unit = f"t{i}"
        at_dispatch = sum(1 for f in faults if f["unit_id"] == unit and f["boundary"] == "dispatch")
        assert starts[unit] == 3 - at_dispatch, (unit, starts, faults)
    replay_all(db)


def test_a_gate_attempt_partial_failure_is_retried_by_the_gate_runner(tmp_path: Path):
    gate = f'gates = [{{ id = "verification", command = ["{sys.executable}", "-c", "pass"] }}]\n'
    plan = chain_plan(tmp_path / "p", n=2, retries=2, gates=gate)
    (tmp_path / "p" / "uok.toml").write_text('[uok.chaos]\nfaults = ["partial-failure"]\n')
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--chaos", "11", "--chaos-rate", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = events(db)
    gate_faults = [f for f in injections(rows) if f["boundary"] == "gate"]
    assert gate_faults and all(f["attempt"] == 1 for f in gate_faults)
    retries = [e for e in rows if e["type"] == "GateRun" and e["outcome"] == "retry"]
    assert len(retries) == len(gate_faults) and all("chaos monkey" in e["rationale"] for e in retries)
    passes = [e for e in rows if e["type"] == "GateRun" and e["outcome"] == "pass" and e["gate_id"] == "verification"]
    assert {e["unit_id"] for e in passes} == {"t0", "t1"} and all(e["attempt"] == 2 for e in passes)
    replay_all(db)


def test_stress_faults_run_and_leave_nothing_behind(tmp_path: Path):
    plan = chain_plan(tmp_path / "p", n=3)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "p" / "uok.toml").write_text(
        '[uok.chaos]\nfaults = ["latency", "disk-stress", "memory-stress"]\n'
        f'max_latency_ms = 50\ndisk_mb = 2\nmemory_mb = 8\ndisk_dir = "{scratch}"\n'
    )
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--chaos", "5", "--chaos-rate", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    faults = injections(events(db))
    assert {f["fault"] for f in faults} == {"latency", "disk-stress", "memory-stress"}
    assert all(0 <= f["magnitude"] <= 50 for f in faults if f["fault"] == "latency")
    assert list(scratch.iterdir()) == []
    assert "could not be applied" not in r.stderr
    replay_all(db)


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["--chaos", "-1"], "", "seed"),
        (["--chaos", "1", "--chaos-rate", "2"], "", "rate"),
        (["--chaos-rate", "0.5"], "", "--chaos-rate needs --chaos"),
        ([], '[uok.chaos]\nenabled = true\nrate = "often"\n', "rate"),
        ([], '[uok.chaos]\nenabled = true\nfaults = ["meteor"]\n', "faults"),
        ([], "[uok.chaos]\nenabled = true\nsneaky = 1\n", "sneaky"),
    ],
)
def test_bad_chaos_settings_exit_2_and_write_nothing(tmp_path: Path, args, config, message):
    plan = chain_plan(tmp_path / "p", n=1)
    if config:
        (tmp_path / "p" / "uok.toml").write_text(config)
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not db.exists()


def test_chaos_from_the_config_alone_and_off_by_default(tmp_path: Path):
    plan = chain_plan(tmp_path / "p", n=2)
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    rows = events(db)
    assert not injections(rows) and "chaos" not in rows[0]["flags"]
    (tmp_path / "p" / "starts.log").unlink()
    plan2 = chain_plan(tmp_path / "q", n=2)
    (tmp_path / "q" / "uok.toml").write_text(
        '[uok.chaos]\nenabled = true\nseed = 9\nrate = 1.0\nfaults = ["latency"]\nmax_latency_ms = 5\n'
    )
    db2 = tmp_path / "y.db"
    assert uok("run", str(plan2), "--db", str(db2), "--quiet").returncode == 0
    faults = injections(events(db2))
    assert faults and {f["seed"] for f in faults} == {9}
