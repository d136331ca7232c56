"""Re-queueing work that had ended (issue 12): a re-run re-queues failed and
blocked units, an amended task re-runs with its dependents, ``uok retry``
opens a new epoch; all decided from the entry, so replay decides the same.
Pure: observations in, decisions out."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.plan import compile_plan as _compile
from uok.domain.plan.fingerprint import fingerprint

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import Recorded, enter, finish, started


def compile_plan(source: str):
    return _compile(source, filename="p.toml")


FLAGS = {"requeue": True, "failed_runs": True}


def _plan(a_cmd=("false",), retries=0) -> str:
    return plan_toml(
        ("S1", [{"id": "a", "command": list(a_cmd), "retries": retries}, {"id": "b", "command": ["true"]}])
    )


class Log(Recorded):
    """One log across runs: each run is a fresh kernel folded from what came before (as ``uok run`` does)."""

    def __init__(self):
        super().__init__()
        self.kernel = Recorded()

    def unit(self, unit_id):
        return self.kernel.unit(unit_id)


def _run(k: Log, source: str, clock, run_id: str, exit_codes: dict[str, int], flags=FLAGS) -> ev.KernelExited:
    """Drive one run to its end: each started turn finishes with the unit's exit code."""
    run = k.kernel = Recorded(k.log)
    out = enter(run, source, clock, run_id=run_id, flags=flags)
    pending = started(out)
    while not any(isinstance(d, ev.KernelExited) for d in out):
        turn = pending.pop(0)
        out = finish(run, turn, clock, exit_code=exit_codes.get(turn.unit_id, 0))
        pending += started(out)
    k.log += run.log
    return next(d for d in k.log if isinstance(d, ev.KernelExited) and d.run_id == run_id)


def _requeued(k: Recorded, run_id: str) -> list[tuple[str, str]]:
    return [(e.unit_id, e.cause) for e in k.log if isinstance(e, ev.UnitRequeued) and e.run_id == run_id]


def test_a_rerun_requeues_the_failed_unit_and_what_it_blocked_with_a_fresh_budget():
    clock, k = StepClock(), Log()
    assert _run(k, _plan(), clock, "r1", {"a": 1}).status == "failed"
    x = _run(k, _plan(), clock, "r2", {})  # the cause was outside the plan (a file, the network)
    assert x.status == "ok" and x.units_completed == 3
    assert _requeued(k, "r2") == [("a", "rerun"), ("b", "dependency"), ("complete-slice:M1/S1", "dependency")]
    a = k.unit("a")
    assert a is not None and a.attempt == 1 and a.dispatches == 2  # budget fresh, dispatch count carried on


def test_reruns_end_in_runaway_recovered_and_only_a_retry_opens_a_new_epoch():
    clock, k = StepClock(), Log()
    source = plan_toml(("S1", [{"id": "a", "command": ["false"], "retries": 0, "max_dispatches": 2}]))
    _run(k, source, clock, "r1", {"a": 1})
    _run(k, source, clock, "r2", {"a": 1})
    _run(k, source, clock, "r3", {"a": 1})  # dispatched twice already: not again
    a = k.unit("a")
    assert a is not None and a.outcome == "runaway-recovered" and a.dispatches == 2
    _run(k, source, clock, "r4", {"a": 1})
    assert _requeued(k, "r4") == []  # a re-run never re-queues a runaway
    retry = {**FLAGS, "retry": {"units": [], "states": ["failed"], "by": "ann@host", "reason": "fixed the loop"}}
    assert _run(k, source, clock, "r5", {}, flags=retry).status == "ok"
    [req] = [e for e in k.log if isinstance(e, ev.UnitRequeued) and e.run_id == "r5" and e.unit_id == "a"]
    assert (req.cause, req.was, req.epoch, req.by, req.reason) == (
        "retry",
        "runaway-recovered",
        True,
        "ann@host",
        "fixed the loop",
    )
    assert k.unit("a").dispatches == 1  # the new epoch counts from zero


def test_an_amended_task_reruns_with_its_dependents_and_an_unchanged_plan_reruns_nothing():
    clock, k = StepClock(), Log()
    v1 = _plan(a_cmd=("true",))
    _run(k, v1, clock, "r1", {})
    assert _run(k, v1, clock, "r2", {}).units_completed == 3 and _requeued(k, "r2") == []
    v2 = _plan(a_cmd=("echo", "v2"))
    assert _run(k, v2, clock, "r3", {}).status == "ok"
    assert _requeued(k, "r3") == [("a", "amended"), ("b", "dependency"), ("complete-slice:M1/S1", "dependency")]
    amended = next(e for e in k.log if isinstance(e, ev.UnitRequeued) and e.run_id == "r3")
    old, new = (compile_plan(src).node("a") for src in (v1, v2))
    assert (amended.old_fingerprint, amended.new_fingerprint) == (fingerprint(old), fingerprint(new))
    assert amended.was == "completed" and amended.reason == "command changed"
    compiled = next(e for e in k.log if isinstance(e, ev.PlanCompiled) and e.run_id == "r3")
    assert compiled.fingerprints["a"] == fingerprint(new)


def test_a_changed_title_or_retry_count_is_not_a_changed_task_a_changed_timeout_is():
    base = compile_plan(_plan(a_cmd=("true",))).node("a")
    same = compile_plan(
        plan_toml(("S1", [{"id": "a", "command": ["true"], "retries": 5, "title": "x"}, {"id": "b"}]))
    ).node("a")
    assert fingerprint(base) == fingerprint(same)
    timed = compile_plan(plan_toml(("S1", [{"id": "a", "command": ["true"], "timeout": 5}]))).node("a")
    assert fingerprint(timed) != fingerprint(base)


def test_without_the_flag_a_rerun_decides_what_it_always_did():
    clock, k = StepClock(), Log()
    _run(k, _plan(), clock, "r1", {"a": 1}, flags={})
    x = _run(k, _plan(), clock, "r2", {}, flags={})
    assert x.status == "ok" and x.units_failed == 3 and _requeued(k, "r2") == []  # what older logs recorded


def test_a_retry_of_named_units_leaves_the_others_alone():
    clock, k = StepClock(), Log()
    source = plan_toml(
        ("S1", [{"id": "a", "command": ["false"], "retries": 0}]),
        ("S2", [{"id": "c", "command": ["false"], "retries": 0}]),
    )
    _run(k, source, clock, "r1", {"a": 1, "c": 1})
    retry = {**FLAGS, "retry": {"units": ["c"], "by": "ann@host"}}
    x = _run(k, source, clock, "r2", {}, flags=retry)
    assert ("c", "retry") in _requeued(k, "r2") and all(u != "a" for u, _ in _requeued(k, "r2"))
    assert x.status == "failed" and k.unit("a").outcome == "failed" and k.unit("c").outcome == "completed"
