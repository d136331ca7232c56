"""`uok doctor`'s classification rules (uok.domain.policies.diagnosis): facts in, verdict out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from uok.domain.policies import diagnosis as dx

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def run(rid: str, **kw) -> dx.OpenRun:
    base = {
        "run_id": rid,
        "plan_id": "p",
        "plan_path": "plan.toml",
        "pid": 123,
        "alive": True,
        "entered_at": NOW - timedelta(hours=1),
    }
    return dx.OpenRun(**{**base, **kw})


def unit(uid: str, rid: str, age_s: float, timeout_s: float | None = 60.0) -> dx.InFlightUnit:
    return dx.InFlightUnit(
        plan_id="p", unit_id=uid, state="running", run_id=rid, since=NOW - timedelta(seconds=age_s), timeout_s=timeout_s
    )


def test_healthy_when_nothing_is_live_and_nothing_is_wrong():
    d = dx.diagnose(dx.Facts(now=NOW))
    assert (d.classification, d.exit_code, d.findings) == ("healthy", 0, ())


def test_running_quiet_and_idle_live_runs():
    recent = run("r1", last_event_at=NOW - timedelta(minutes=1))
    assert dx.diagnose(dx.Facts(now=NOW, open_runs=(recent,))).classification == "running"
    quiet = run("r1", last_event_at=NOW - timedelta(minutes=20), descendants=2)
    assert dx.diagnose(dx.Facts(now=NOW, open_runs=(quiet,))).classification == "quiet-but-healthy"
    waiting = run("r1", last_event_at=NOW - timedelta(minutes=20), descendants=0)
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(waiting,), in_flight=(unit("u", "r1", 19 * 60, timeout_s=3600),)))
    assert d.classification == "quiet-but-healthy" and d.exit_code == 0
    idle = run("r1", last_event_at=NOW - timedelta(minutes=20), descendants=0)
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(idle,)))
    assert (
        d.classification == "degraded"
        and d.findings[0].code == "run-idle"
        and "kill 123" in d.findings[0].recommendation
    )


def test_a_unit_beyond_its_timeout_degrades_even_a_progressing_run():
    live = run("r1", last_event_at=NOW - timedelta(seconds=10))
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(live,), in_flight=(unit("slow", "r1", 120, timeout_s=30),)))
    assert d.classification == "degraded" and d.exit_code == 1
    f = d.findings[0]
    assert f.code == "stuck-unit" and f.subject == "p/slow" and "uok run plan.toml" in f.recommendation
    # unknown timeout: 30 minutes (behaviour §7) is the limit
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(live,), in_flight=(unit("u", "r1", 29 * 60, timeout_s=None),)))
    assert d.classification == "running"
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(live,), in_flight=(unit("u", "r1", 31 * 60, timeout_s=None),)))
    assert d.classification == "degraded"


def test_needs_repair_wins_over_everything():
    orphan = run("r0", alive=False, orphaned=True, detail="pid 123 not running")
    live = run("r1", last_event_at=NOW)
    facts = dx.Facts(
        now=NOW,
        open_runs=(orphan, live),
        in_flight=(unit("u", "r0", 10),),
        breakers=(dx.OpenBreaker(gate_id="g", state="open"),),
    )
    d = dx.diagnose(facts)
    assert d.classification == "needs-repair" and d.exit_code == 1
    assert [f.code for f in d.findings] == ["orphaned-run", "breaker-open"]  # the orphan's unit is covered by it
    assert "uok run plan.toml" in d.findings[0].recommendation and "recovered" in d.findings[0].recommendation
    d = dx.diagnose(dx.Facts(now=NOW, in_flight=(unit("u", "gone", 10),)))
    assert d.classification == "needs-repair" and d.findings[0].code == "unit-without-run"
    d = dx.diagnose(dx.Facts(now=NOW, db_ok=False, db_error="hash chain broken at position 7"))
    assert d.classification == "needs-repair" and "uok verify" in d.findings[0].recommendation


def test_degraded_findings_and_their_commands():
    facts = dx.Facts(
        now=NOW,
        breakers=(dx.OpenBreaker(gate_id="tests", state="half-open"),),
        failing_gates=(
            dx.FailingGate(gate_id="lint", consecutive_failures=3),
            dx.FailingGate(gate_id="ok", consecutive_failures=2),
        ),
        past_mismatches=(
            dx.PastMismatch(run_id="old", status="error", at=NOW - timedelta(days=1)),
            dx.PastMismatch(run_id="older", status="recovered", at=NOW - timedelta(days=3)),
        ),
        last_ok_entered_at=NOW - timedelta(days=2),  # a clean run after "older", none after "old"
        projections=(dx.ProjectionLag(name="units", lag=0, rebuilding=True), dx.ProjectionLag(name="runs", lag=40)),
    )
    d = dx.diagnose(facts)
    assert d.classification == "degraded"
    by = {f.code: f for f in d.findings}
    assert set(by) == {"breaker-open", "gate-failing", "run-error", "projection-rebuilding", "projection-lag"}
    assert "uok breakers" in by["breaker-open"].recommendation
    assert by["gate-failing"].subject == "lint" and "uok sql" in by["gate-failing"].recommendation
    assert by["run-error"].subject == "old"
    assert "uok projections rebuild units" in by["projection-rebuilding"].recommendation
    assert by["projection-lag"].severity == "info" and d.findings[-1].code == "projection-lag"


def test_a_run_on_another_host_is_neither_live_nor_orphaned_while_fresh():
    remote = run("r9", alive=None, host="elsewhere", last_event_at=NOW - timedelta(minutes=20))
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(remote,), in_flight=(unit("u", "r9", 600),)))
    assert d.classification == "healthy" and [f.code for f in d.findings] == ["run-unprobeable"]
    assert "elsewhere" in d.findings[0].recommendation


def test_a_paused_run_is_reported_as_paused_not_as_idle():
    """An operator paused it (uok steer RUN pause): idle on purpose, never 'kill it'."""
    paused = run("r1", last_event_at=NOW - timedelta(minutes=20), descendants=0, paused=True)
    d = dx.diagnose(dx.Facts(now=NOW, open_runs=(paused,)))
    assert d.classification == "quiet-but-healthy" and d.exit_code == 0
    assert [f.code for f in d.findings] == ["run-paused"]
    assert "paused" in d.findings[0].message and "resume" in d.findings[0].recommendation
    assert "kill" not in d.findings[0].recommendation
