"""Claims of workers on a run's turns: the pure fold (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from uok.domain import events as ev
from uok.domain.events.claims import admitted, measured
from uok.domain.kernel import Kernel
from uok.domain.policies.claims import CLAIM_TOPICS, ClaimLost, check_holds, claimable, fold, lease_expired

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WHO = {"worker": "w1", "host": "h1", "pid": 11}


def claimed(turn: str = "t1", at: datetime = T0, **kw) -> ev.UnitClaimed:
    fields = {**WHO, **kw}
    return ev.UnitClaimed(run_id="r", at=at, turn_id=turn, epoch=1, unit_id="u", attempt=1, ttl_seconds=2.0, **fields)


def test_a_claim_is_pinned_in_its_turns_own_stream_at_its_epoch():
    e = claimed()
    assert (e.stream(), e.pinned_version()) == ("claim:t1", 1)
    renew = ev.ClaimRenewed(run_id="r", at=T0, turn_id="t1", epoch=2, ttl_seconds=2.0, **WHO)
    assert (renew.stream(), renew.pinned_version()) == ("claim:t1", 2)
    joined = ev.WorkerJoined(run_id="r", at=T0, ttl_seconds=2.0, **WHO)
    assert joined.stream() == "worker:w1" and joined.pinned_version() is None


def test_the_fold_follows_a_claim_from_taken_to_reported_and_counts_per_worker():
    joined = ev.WorkerJoined(run_id="r", at=T0, ttl_seconds=2.0, **WHO)
    renew = ev.ClaimRenewed(run_id="r", at=T0 + timedelta(seconds=1), turn_id="t1", epoch=2, ttl_seconds=2.0, **WHO)
    report = ev.WorkerReported(run_id="r", at=T0, turn_id="t1", epoch=3, unit_id="u", exit_code=0, duration_ms=5, **WHO)
    st = fold([joined, claimed(), renew])
    c = st.claims["t1"]
    assert (c.epoch, c.status, c.renewed_at) == (2, "live", T0 + timedelta(seconds=1))
    assert c.expires_at() == T0 + timedelta(seconds=3)
    assert list(claimable(st, ["t0", "t1", "t2"])) == ["t0", "t2"]
    assert check_holds(st, "t1", "w1", 2) is c
    st = fold([joined, claimed(), renew, report])
    assert (st.claims["t1"].status, st.workers["w1"].claims, st.workers["w1"].reported) == ("reported", 1, 1)


def test_a_lease_expires_by_the_coordinators_clock_only_while_live():
    c = fold([claimed()]).claims["t1"]
    assert not lease_expired(c, seen_at=100.0, now=102.0)
    assert lease_expired(c, seen_at=100.0, now=102.01)
    c.status = "reported"
    assert not lease_expired(c, seen_at=100.0, now=1000.0)


def test_an_expired_claim_refuses_its_worker_naming_why():
    expired = ev.ClaimExpired(run_id="r", at=T0, turn_id="t1", epoch=2, unit_id="u", reason="no heartbeat", **WHO)
    st = fold([ev.WorkerJoined(run_id="r", at=T0, ttl_seconds=2.0, **WHO), claimed(), expired])
    assert st.workers["w1"].lost == 1
    with pytest.raises(ClaimLost, match=r"lease of worker w1 on turn t1 .* expired at epoch 2: no heartbeat"):
        check_holds(st, "t1", "w1", 1)
    with pytest.raises(ClaimLost, match="claimed by worker w1"):
        check_holds(st, "t1", "w2", 1)
    with pytest.raises(ClaimLost, match="never claimed"):
        check_holds(st, "t9", "w1", 1)


def test_a_report_is_admitted_as_the_execution_finished_it_measured():
    fin = ev.ExecutionFinished(
        run_id="r", at=T0, turn_id="t1", unit_id="u", exit_code=3, duration_ms=9, error="", stderr_tail="boom",
        products={"out.txt": "present"}, model="m",
    )  # fmt: skip
    report = ev.WorkerReported(run_id="r", at=T0, turn_id="t1", epoch=2, unit_id="u", **WHO, **measured(fin))
    assert admitted(report, T0) == fin
    # every measured field of an execution is carried: a field added to one must be added to the other
    carried = set(ev.WorkerReported.__struct_fields__)
    assert set(ev.ExecutionFinished.__struct_fields__) <= carried


def test_the_kernel_decides_nothing_and_folds_nothing_for_claim_events():
    k = Kernel()
    for e in (
        ev.WorkerJoined(run_id="r", at=T0, ttl_seconds=2.0, **WHO),
        claimed(),
        ev.ClaimRenewed(run_id="r", at=T0, turn_id="t1", epoch=2, ttl_seconds=2.0, **WHO),
        ev.WorkerReported(run_id="r", at=T0, turn_id="t1", epoch=3, unit_id="u", exit_code=0, duration_ms=1, **WHO),
        ev.ClaimExpired(run_id="r", at=T0, turn_id="t2", epoch=1, unit_id="u", worker="", host="", pid=0),
        ev.WorkerLeft(run_id="r", at=T0, **WHO),
    ):
        assert k.handle(e) == []
    assert not (set(CLAIM_TOPICS) & Kernel.folded_topics())  # no fold: when a worker appends cannot matter
    assert (k.state.runs, k.state.units, k.state.in_flight) == ({}, {}, {})


def test_doctor_names_a_dead_worker_degraded_while_its_run_is_open():
    from uok.domain.policies.diagnosis import Facts, WorkerFact, diagnose

    dead = WorkerFact(worker="w1", run_id="r", host="h1", pid=11, alive=False, run_open=True, overdue=("u3",))
    d = diagnose(Facts(now=T0, workers=(dead,)))
    (f,) = [f for f in d.findings if f.code == "dead-worker"]
    assert (d.classification, f.severity, f.subject) == ("degraded", "degraded", "w1")
    assert (
        f.message == "worker w1 (pid 11 on h1) of run r is dead: pid 11 is not running on h1; its lease on u3 ran out"
    )
    after = msgspec_replace(dead, run_open=False, alive=None, overdue=(), lost=1)
    (f,) = diagnose(Facts(now=T0, workers=(after,))).findings
    assert f.severity == "info" and "lost its lease on 1 unit(s)" in f.message
    alive = msgspec_replace(dead, alive=True, overdue=())
    assert diagnose(Facts(now=T0, workers=(alive,))).findings == ()


def test_doctor_says_when_no_live_worker_serves_a_claims_run():
    from uok.domain.policies.diagnosis import Facts, UnservedRun, diagnose

    d = diagnose(Facts(now=T0, unserved_runs=(UnservedRun(run_id="r7", waiting=3),)))
    (f,) = d.findings
    assert (d.classification, f.code, f.subject) == ("degraded", "no-worker", "r7")
    assert "3 unit(s) wait" in f.message and "uok worker --run r7" in f.recommendation


def msgspec_replace(s, **kw):
    import msgspec

    return msgspec.structs.replace(s, **kw)


def test_a_turn_voided_before_any_claim_is_no_longer_claimable():
    void = ev.ClaimExpired(run_id="r", at=T0, turn_id="t1", epoch=1, unit_id="u", worker="", host="", pid=0)
    st = fold([void])
    assert list(claimable(st, ["t1", "t2"])) == ["t2"]
    assert st.claims["t1"].status == "expired"
