"""Gates in the shell: registry, host, the runner end to end, breakers over
a real log (projection at a past position == what the runner saw)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import orjson
import pytest
from uok.adapters.cli.commands.breakers import snapshot
from uok.adapters.eventlog import EventLog
from uok.adapters.gates.host import GateHost
from uok.adapters.gates.registry import GateRegistry, default_registry
from uok.adapters.gates.verification import VerificationGate
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.config import Settings
from uok.domain.events import BreakerTransitioned, GateEvaluated, GateRequested, GateRun
from uok.domain.policies.gates import GateContext, GateResult, GateValidationError
from uok.projections.base import fold
from uok.projections.breakers import BreakersProjection
from uok.projections.registry import by_name

from tests.conftest import uok
from tests.helpers import StepClock
from tests.run_support import read_events
from uok.bootstrap import build_runner

PY = sys.executable


class Gate:
    def __init__(self, gid, fn, gtype="custom"):
        self.id, self.type, self.fn = gid, gtype, fn

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        return self.fn(context, attempt)


def boom(ctx, attempt):
    raise RuntimeError("boom: the gate crashed")


def write_plan(path: Path, tasks: list[str], plan_id="g") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    body = f'[plan]\nid = "{plan_id}"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for t in tasks:
        body += "[[milestones.slices.tasks]]\n" + t + "\n"
    (path / "plan.toml").write_text(body)
    return path / "plan.toml"


# --------------------------------------------------------------------------- registry and host


def test_register_validates_and_replaces_the_same_id():
    reg = GateRegistry()
    a, b = Gate("x", boom, "one"), Gate("x", boom, "two")
    reg.register(a)
    reg.register(Gate("y", boom))
    reg.register(b)
    assert [g.id for g in reg.list()] == ["x", "y"] and reg.get("x") is b
    assert reg.types() == {"x": "two", "y": "custom"}
    with pytest.raises(GateValidationError):
        reg.register(Gate("", boom))
    assert set(default_registry().types()) == {"verification", "security"}


def _host(reg, **kw):
    return GateHost(reg, Path("."), Settings(), clock=StepClock(), **kw)


def _req(gid, attempt=1):
    return GateRequested(
        run_id="r", at=StepClock()(), turn_id="r:1", unit_id="u", gate_id=gid, gate_type="custom", attempt=attempt
    )


def _ctx(gid, timeout=None):
    return GateContext(run_id="r", turn_id="r:1", unit_id="u", gate_id=gid, timeout=timeout)


@pytest.mark.parametrize(
    "fn, outcome, failure_class, rationale",
    [
        (boom, "fail", "unknown", "boom: the gate crashed"),  # a raising gate: rationale = the message
        (lambda c, a: "yes", "fail", "unknown", "gate returned str, not a GateResult"),
        (lambda c, a: {"outcome": "pass", "rationale": "dict ok"}, "pass", "", "dict ok"),
        (lambda c, a: GateResult(outcome="maybe"), "fail", "unknown", "gate returned outcome 'maybe'"),
        (
            lambda c, a: GateResult(outcome="fail", failure_class="timeout", rationale=f"attempt {a}"),
            "fail",
            "timeout",
            "attempt 1",
        ),
    ],
)
def test_the_host_never_raises(fn, outcome, failure_class, rationale):
    reg = GateRegistry([Gate("g", fn)])
    obs = _host(reg).evaluate(_req("g"), _ctx("g"))
    assert isinstance(obs, GateEvaluated)
    assert (obs.outcome, obs.failure_class, obs.rationale) == (outcome, failure_class, rationale)


def test_a_hung_gate_is_given_up_on_after_its_deadline():
    release = threading.Event()
    reg = GateRegistry([Gate("slow", lambda c, a: release.wait(30) and GateResult(outcome="pass"))])
    obs = _host(reg, grace=0.1).evaluate(_req("slow"), _ctx("slow", timeout=0.1))
    release.set()
    assert (obs.outcome, obs.failure_class) == ("fail", "timeout") and "did not return within 0.2 s" in obs.rationale


def test_the_host_redacts_rationales_and_finding_messages():
    from uok.adapters.secrets import redact
    from uok.domain.events import Finding

    key = "AKIA" + "Q7XKZ3M2P9R4T6W8"
    reg = GateRegistry(
        [
            Gate(
                "g",
                lambda c, a: GateResult(
                    outcome="fail", rationale=f"saw {key}", findings=(Finding(message=f"line has {key}"),)
                ),
            )
        ]
    )
    obs = _host(reg, redact=redact).evaluate(_req("g"), _ctx("g"))
    assert key not in obs.rationale and key not in obs.findings[0].message
    assert "[REDACTED:AWS Access Key:" in obs.rationale


def test_the_verification_gate_judges_by_exit_status(tmp_path: Path):
    gate = VerificationGate()
    base = {"run_id": "r", "turn_id": "r:1", "unit_id": "u", "gate_id": "verification", "base_path": str(tmp_path)}
    ok = gate.execute(GateContext(**base, command=(PY, "-c", "print('fine')")), 1)
    bad = gate.execute(
        GateContext(**base, command=(PY, "-c", "import sys; print('3 failed', file=sys.stderr); sys.exit(3)")), 1
    )
    slow = gate.execute(GateContext(**base, command=(PY, "-c", "import time; time.sleep(10)"), timeout=0.3), 1)
    none = gate.execute(GateContext(**base), 1)
    shell = gate.execute(GateContext(**base, command=("exit 0",), shell=True), 1)
    assert ok.outcome == "pass" and shell.outcome == "pass"
    assert (bad.outcome, bad.failure_class) == ("fail", "verification") and bad.rationale == "exit code 3: 3 failed"
    assert (slow.outcome, slow.failure_class) == ("fail", "timeout") and "timed out after 0.3 s" in slow.rationale
    assert (none.outcome, none.failure_class) == (
        "manual-attention",
        "input",
    ) and "no command configured" in none.rationale


# --------------------------------------------------------------------------- the runner, end to end


def test_unknown_and_raising_gates_are_recorded_and_the_run_continues(tmp_path: Path):
    plan = write_plan(
        tmp_path / "p",
        [
            'id = "crashy"\nretries = 0\ncommand = ["true"]\ngates = ["raising"]',
            'id = "orphan"\ndepends_on = []\ncommand = ["true"]\ngates = ["not-a-gate"]',
            f'id = "good"\ndepends_on = []\ncommand = ["true"]\ngates = ["security", {{ id = "verification", command = ["{PY}", "-c", "pass"] }}]\nwrites = ["x.txt"]',
        ],
    )
    (plan.parent / "x.txt").write_text("clean\n")
    reg = default_registry()
    reg.register(Gate("raising", boom))
    db = tmp_path / "r.db"
    store = SqliteEventStore(db)
    try:
        # check_gates=False: the kernel's own handling of a gate it does not know (a log
        # written before uok run refused unknown gate ids, a registry that lost one)
        result = build_runner(EventLog(store), plan, workers=2, gates=reg, check_gates=False).run()
    finally:
        store.close()
    assert result.status == "failed" and result.units_failed == 3  # crashy, orphan, and the slice they block
    events = [e for _, e in read_events(db)]
    runs = {e.gate_id: e for e in events if isinstance(e, GateRun)}
    crash = runs["raising"]
    assert (crash.outcome, crash.failure_class, crash.rationale, crash.attempt, crash.max_attempts) == (
        "fail",
        "unknown",
        "boom: the gate crashed",
        1,
        1,
    )
    orphan = runs["not-a-gate"]
    assert (orphan.gate_type, orphan.outcome, orphan.failure_class, orphan.rationale) == (
        "unknown",
        "manual-attention",
        "unknown",
        "Gate not-a-gate not registered",
    )
    assert runs["security"].outcome == "pass" and runs["verification"].outcome == "pass"
    units = {}
    for e in events:
        if isinstance(e, ev.UnitTransitioned) and e.to_state != "notified":
            units[e.unit_id] = e.to_state
    assert units["crashy"] == "failed" and units["orphan"] == "blocked" and units["good"] == "completed"
    assert isinstance(events[-1], ev.KernelExited)
    # the gate attempt that crashed was observed, then judged
    assert any(isinstance(e, GateEvaluated) and e.gate_id == "raising" for e in events)


def test_a_flaky_verification_gate_is_retried_by_the_matrix(tmp_path: Path):
    flaky = "import os,sys; p='m'; seen=os.path.exists(p); open(p,'a').close(); sys.exit(0 if seen else 1)"
    plan = write_plan(
        tmp_path / "p",
        [f'id = "a"\ncommand = ["true"]\ngates = [{{ id = "verification", command = ["{PY}", "-c", "{flaky}"] }}]'],
    )
    db = tmp_path / "f.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(line)["event"] for line in uok("events", "--db", str(db), "--json").stdout.splitlines()]
    gr = [(e["outcome"], e["attempt"], e["max_attempts"]) for e in rows if e["type"] == "GateRun"]
    assert gr == [("retry", 1, 2), ("pass", 2, 1)]
    assert [e["attempt"] for e in rows if e["type"] == "GateRequested"] == [1, 2]


def test_breaker_state_at_every_past_position_equals_what_the_runner_saw(tmp_path: Path):
    """Four runs of a plan whose verification gate always fails. With
    threshold 1 and a stepping clock the breaker opens, short-circuits,
    goes half-open, probes, re-opens with a longer time. At every position
    where the runner consulted the breaker (a GateRequested or GateRun
    recording ``breaker_state``), the projection folded up to that position
    reports that state."""
    tasks = [
        f'id = "t{i}"\ndepends_on = []\nretries = 0\ncommand = ["true"]\n'
        f'gates = [{{ id = "verification", command = ["{PY}", "-c", "raise SystemExit(1)"] }}]'
        for i in range(3)
    ]
    plan = write_plan(tmp_path / "p", tasks, plan_id="brk")
    (plan.parent / "uok.toml").write_text(
        '[uok.breakers]\nfailure_threshold = 1\nopen_seconds = 4\nhalf_open_timeout_seconds = 60\nscope = "shared"\nhold = false\n'
    )
    db = tmp_path / "b.db"
    clock = StepClock(step=1.0)
    for run in range(4):
        if run:
            # a new run of the same plan: make its units runnable again
            plan = write_plan(tmp_path / "p", tasks, plan_id=f"brk{run}")
        store = SqliteEventStore(db)
        try:
            build_runner(EventLog(store), plan, workers=1, clock=clock, run_id=f"run{run}").run()
        finally:
            store.close()
    events = read_events(db)
    transitions = [(e.from_state, e.to_state) for _, e in events if isinstance(e, BreakerTransitioned)]
    assert ("closed", "open") in transitions and ("open", "half-open") in transitions
    assert ("half-open", "open") in transitions
    assert any(isinstance(e, GateRun) and e.short_circuited for _, e in events)

    store = SqliteEventStore(db)
    log = EventLog(store)
    try:
        witnessed = [(p, e) for p, e in events if isinstance(e, (GateRequested, GateRun)) and e.breaker_state]
        assert len(witnessed) >= 8
        proj = BreakersProjection()
        state, _pos = proj.initial(), 0
        for p, e in events:  # incremental fold == fold up to each position
            state = proj.apply(state, p, e) if type(e).__name__ in proj.types else state
            if (p, e) in witnessed:
                assert state.gates[e.gate_id].state == e.breaker_state, (p, type(e).__name__)
        # spot-check against a from-scratch fold up to a position, and the CLI
        p, e = witnessed[len(witnessed) // 2]
        at_p, _ = fold(by_name("breakers"), log.events(upto=p))
        assert at_p.gates["verification"].state == e.breaker_state
        assert snapshot(log, p)["breakers"][0]["state"] == e.breaker_state
    finally:
        store.close()
    r = uok("breakers", "--db", str(db), "--at", str(p), "--json")
    assert r.returncode == 0, r.stderr
    out = orjson.loads(r.stdout)
    assert out["position"] == p and out["breakers"][0]["gate_id"] == "verification"
    assert out["breakers"][0]["state"] == e.breaker_state
    live = orjson.loads(uok("breakers", "--db", str(db), "--json").stdout)
    assert live["position"] == events[-1][0]
    text = uok("breakers", "--db", str(db))
    assert "verification" in text.stdout and "streak=" in text.stdout
    bad = uok("breakers", "--db", str(db), "--at", str(events[-1][0] + 5))
    assert bad.returncode == 2 and "past the end of the log" in bad.stderr
