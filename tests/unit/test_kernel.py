"""The kernel's decision rules, observations in and decisions out (no I/O)."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml

CMD = ["true"]


class Recorded(Kernel):
    """A kernel that also keeps what it was fed and decided: the log a shell would write."""

    def __init__(self, log=()):
        super().__init__()
        self.log: list[ev.Event] = []
        for e in log:
            self.apply(e)

    def handle(self, obs):
        out = super().handle(obs)
        self.log += [obs, *out]
        return out


def enter(k: Kernel, source: str, clock, *, run_id="r1", pid=100, workers=2, probes=(), flags=None):
    return k.handle(
        ev.KernelEntered(
            run_id=run_id,
            at=clock(),
            pid=pid,
            plan_path="p.toml",
            plan_source=source,
            workers=workers,
            probes=tuple(probes),
            flags=flags or {},
        )
    )


def finish(k: Kernel, turn: ev.TurnStarted, clock, exit_code=0, **kw):
    return k.handle(
        ev.ExecutionFinished(
            run_id=turn.run_id,
            at=clock(),
            turn_id=turn.turn_id,
            unit_id=turn.unit_id,
            exit_code=exit_code,
            duration_ms=5,
            **kw,
        )
    )


def started(decisions) -> list[ev.TurnStarted]:
    return [d for d in decisions if isinstance(d, ev.TurnStarted) and d.unit_type == "execute-task"]


def transitions(decisions, unit_id):
    return [d.to_state for d in decisions if isinstance(d, ev.UnitTransitioned) and d.unit_id == unit_id]


def test_a_chain_runs_in_order_and_the_run_exits_ok():
    clock = StepClock()
    k = Kernel()
    out = enter(k, plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "b", "command": CMD}])), clock)
    assert isinstance(out[0], ev.PlanCompiled)
    assert [t.unit_id for t in started(out)] == ["a"]
    out = finish(k, started(out)[0], clock)
    assert transitions(out, "a") == ["completed", "notified"]
    assert [t.unit_id for t in started(out)] == ["b"]
    out = finish(k, started(out)[0], clock)
    exits = [d for d in out if isinstance(d, ev.KernelExited)]
    assert len(exits) == 1 and exits[0].status == "ok"
    assert exits[0].units_completed == 3 and exits[0].units_failed == 0  # a, b, complete-slice


def test_writers_of_the_same_file_never_run_together():
    clock = StepClock()
    k = Kernel()
    src = plan_toml(
        ("S1", [{"id": "a", "command": CMD, "writes": ["f.txt"]}]),
        ("S2", [{"id": "b", "command": CMD, "writes": ["f.txt"]}]),
        ("S3", [{"id": "c", "command": CMD}]),
    )
    out = enter(k, src, clock, workers=4)
    assert [t.unit_id for t in started(out)] == ["a", "c"]
    out = finish(k, started(out)[0], clock)
    assert [t.unit_id for t in started(out)] == ["b"]


def test_a_failure_is_retried_within_budget_then_fails_and_blocks_dependents():
    clock = StepClock()
    k = Kernel()
    out = enter(k, plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 1}, {"id": "b", "command": CMD}])), clock)
    t1 = started(out)[0]
    out = finish(k, t1, clock, exit_code=1, stderr_tail="boom\n")
    assert transitions(out, "a") == ["failed", "queued", "claimed", "running"]  # retried at once
    [fin] = [d for d in out if isinstance(d, ev.TurnFinished)]
    assert fin.status == "retry" and fin.failure_class == "execution" and "boom" in fin.error
    t2 = started(out)[0]
    assert t2.unit_id == "a" and t2.attempt == 2
    out = finish(k, t2, clock, exit_code=1)
    assert transitions(out, "a") == ["failed", "notified"]
    assert transitions(out, "b") == ["blocked", "notified"]
    [x] = [d for d in out if isinstance(d, ev.KernelExited)]
    assert x.status == "ok" and x.units_failed == 3  # a failed, b and complete-slice blocked


def test_a_timeout_is_classified_as_timeout():
    clock = StepClock()
    k = Kernel()
    out = enter(k, plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 0}])), clock)
    out = finish(k, started(out)[0], clock, exit_code=-9, timed_out=True)
    [f] = [d for d in out if isinstance(d, ev.UnitTransitioned) and d.to_state == "failed"]
    assert f.failure_class == "timeout"


def test_a_crashed_run_is_recovered_and_its_in_flight_units_requeued():
    clock = StepClock()
    k = Recorded()
    src = plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "b", "command": CMD}]))
    first = enter(k, src, clock, run_id="r1", pid=111)
    finish(k, started(first)[0], clock)  # a completes, b starts... then r1 dies
    k2 = Recorded(k.log)  # a new kernel folds the log, as the shell does on start
    out = enter(k2, src, clock, run_id="r2", pid=222, probes=[ev.PidProbe(run_id="r1", pid=111, alive=False)])
    [rec] = [d for d in out if isinstance(d, ev.RunRecovered)]
    assert rec.recovered_run == "r1" and rec.stale_units == ("b",)
    assert transitions(out, "b")[:2] == ["stale", "queued"]
    assert transitions(out, "a") == []  # completed: never run again
    assert [t.unit_id for t in started(out)] == ["b"]
    assert k2.state.runs["r1"].status == "recovered"


def test_a_live_open_run_is_not_recovered():
    clock = StepClock()
    k = Recorded()
    src = plan_toml(("S1", [{"id": "a", "command": CMD}]), plan_id="other")
    enter(k, src, clock, run_id="r1", pid=111)
    k2 = Recorded(k.log)
    out = enter(
        k2,
        plan_toml(("S1", [{"id": "x", "command": CMD}])),
        clock,
        run_id="r2",
        probes=[ev.PidProbe(run_id="r1", pid=111, alive=True)],
    )
    assert not [d for d in out if isinstance(d, ev.RunRecovered)]


def test_the_runaway_cap_stops_a_unit_dispatched_too_often():
    clock = StepClock()
    src = plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 5, "max_dispatches": 6}]))
    log: list[ev.Event] = []
    for i in range(7):  # seven runs, each interrupted by a signal while a is running
        k = Kernel()
        for e in log:
            k.apply(e)
        obs = ev.KernelEntered(run_id=f"r{i}", at=clock(), pid=1, plan_path="p", plan_source=src, workers=1)
        log += [obs, *k.handle(obs)]
        sig = ev.SignalReceived(run_id=f"r{i}", at=clock(), signal="SIGTERM")
        log += [sig, *k.handle(sig)]
    runaway = [e for e in log if isinstance(e, ev.UnitTransitioned) and e.to_state == "runaway-recovered"]
    assert len(runaway) == 1 and runaway[0].dispatches == 6
    claims = [e for e in log if isinstance(e, ev.UnitTransitioned) and e.to_state == "claimed"]
    assert len(claims) == 6


def test_a_signal_cancels_running_units_and_exits_terminated():
    clock = StepClock()
    k = Kernel()
    out = enter(k, plan_toml(("S1", [{"id": "a", "command": CMD}])), clock)
    out = k.handle(ev.SignalReceived(run_id="r1", at=clock(), signal="SIGINT"))
    assert transitions(out, "a") == ["cancelled"]
    assert [d.status for d in out if isinstance(d, ev.TurnFinished)] == ["stopped"]
    assert [d.status for d in out if isinstance(d, ev.KernelExited)] == ["terminated"]


def test_the_kernel_is_deterministic():
    src = plan_toml(("S1", [{"id": "a", "command": CMD}]), ("S2", [{"id": "b", "command": CMD}]))

    def drive():
        clock = StepClock()
        k = Kernel()
        out = enter(k, src, clock)
        for t in started(out):
            out += finish(k, t, clock)
        return out

    assert drive() == drive()
