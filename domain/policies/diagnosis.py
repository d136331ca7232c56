"""Diagnostic synthesis (behaviour §14): one verdict from gathered facts.

Pure: the shell (``adapters/doctor.py``) gathers the facts (which runs are
open and whether their pids are alive, units in flight, breakers, gate
history, parity, projection positions, the clock) and this module
classifies them, so the rules can be tested without processes or time.

Classification, first match wins:

1. **needs-repair**: the log is unusable (cannot be opened, hash chain
   broken); or a run is orphaned (entered, never exited, its pid is dead or
   it is stale beyond 30 min without proof of life) — its in-flight units
   stay claimed/running until a kernel recovers it; or in-flight units
   belong to no live run; or a run has more than one exit record.
2. **degraded**: open or half-open breakers; units in flight beyond their
   task timeout (30 min when the timeout is unknown) while their run is
   alive (stuck);
   repeated gate failures (the last ``repeated_failures`` final outcomes of
   a gate all failed); runs that ended ``error``, ``failed`` (units did not
   complete) or were ``recovered`` with
   no clean (``ok``) run entered after them; an interrupted projection
   rebuild; a live run idle beyond the idle window with nothing in flight.
3. **running**: a live run made progress within the idle window (5 min).
4. **quiet-but-healthy**: a live run, no recent progress, but its process
   has descendants (a task is running) or its in-flight units are still
   within their timeout.
5. **healthy**: no live run and no issues.

Every finding carries a recommendation naming the command to run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

IDLE_WINDOW = timedelta(minutes=5)
STALE_AFTER = timedelta(milliseconds=30 * 60 * 1000)  # behaviour §7 UNMATCHED_RUN_STALE_MS
REPEATED_FAILURES = 3

CLASSES = ("healthy", "running", "quiet-but-healthy", "degraded", "needs-repair")
EXIT_CODES = {"healthy": 0, "running": 0, "quiet-but-healthy": 0, "degraded": 1, "needs-repair": 1}


class OpenRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run with no exit record, and what the shell found about its process."""

    run_id: str
    plan_id: str = ""
    plan_path: str = ""
    pid: int = 0
    host: str = ""
    alive: bool | None = None  # None: not probeable from here (another host)
    orphaned: bool = False  # the parity report's verdict (dead, detached, or stale)
    detail: str = ""
    entered_at: datetime | None = None
    last_event_at: datetime | None = None  # newest event the run wrote
    descendants: int | None = None  # live child processes of its pid (None: unknown)
    paused: bool = False  # its plan is paused by an operator (uok steer RUN pause): idle on purpose


class InFlightUnit(msgspec.Struct, frozen=True, kw_only=True):
    plan_id: str
    unit_id: str
    state: str  # claimed | running | progress
    run_id: str
    since: datetime | None  # time of its last transition
    timeout_s: float | None  # the task's timeout from its compiled plan (None: unknown)


class PastMismatch(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    status: str  # error | recovered | failed (units did not complete)
    plan_path: str = ""
    at: datetime | None = None  # when it entered
    detail: str = ""


class LostProduct(msgspec.Struct, frozen=True, kw_only=True):
    """A unit recorded completed whose declared product is gone (behaviour §13)."""

    plan_id: str
    unit_id: str
    product: str
    state: str  # blank | missing
    plan_path: str = ""


class OpenBreaker(msgspec.Struct, frozen=True, kw_only=True):
    gate_id: str
    state: str  # open | half-open
    open_until: datetime | None = None
    reason: str = ""


class FailingGate(msgspec.Struct, frozen=True, kw_only=True):
    gate_id: str
    consecutive_failures: int  # final outcomes, newest first, that were fail/manual-attention
    last_rationale: str = ""


class ProjectionLag(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lag: int
    rebuilding: bool = False


class WorkerFact(msgspec.Struct, frozen=True, kw_only=True):
    """A ``uok worker`` that joined a run and never said it left."""

    worker: str
    run_id: str
    host: str
    pid: int
    alive: bool | None  # probed on this host; None: another host
    run_open: bool
    lost: int = 0  # leases it lost (the coordinator recorded them expired)
    overdue: tuple[str, ...] = ()  # units whose lease it holds past its end


class UnservedRun(msgspec.Struct, frozen=True, kw_only=True):
    """An open ``uok run --claims`` with units waiting and no live worker."""

    run_id: str
    waiting: int


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    now: datetime
    db_ok: bool = True
    db_error: str = ""
    head: int = 0
    open_runs: tuple[OpenRun, ...] = ()
    in_flight: tuple[InFlightUnit, ...] = ()
    past_mismatches: tuple[PastMismatch, ...] = ()
    last_ok_entered_at: datetime | None = None  # newest run that exited ok
    breakers: tuple[OpenBreaker, ...] = ()
    failing_gates: tuple[FailingGate, ...] = ()
    projections: tuple[ProjectionLag, ...] = ()
    duplicate_exits: tuple[str, ...] = ()
    lost_products: tuple[LostProduct, ...] = ()
    workers: tuple[WorkerFact, ...] = ()
    unserved_runs: tuple[UnservedRun, ...] = ()


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    severity: str  # needs-repair | degraded | info
    code: str
    subject: str
    message: str
    recommendation: str


class Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    classification: str
    exit_code: int
    summary: str
    findings: tuple[Finding, ...]
    live_runs: tuple[str, ...] = ()


def _age(now: datetime, then: datetime | None) -> timedelta | None:
    return None if then is None else now - then


def _mins(td: timedelta) -> str:
    s = max(0, int(td.total_seconds()))
    return f"{s // 60} min" if s >= 120 else f"{s} s"


def _run_cmd(plan_path: str) -> str:
    return f"uok run {plan_path}" if plan_path else "uok run PLAN"


def diagnose(
    f: Facts,
    *,
    idle_window: timedelta = IDLE_WINDOW,
    stale_after: timedelta = STALE_AFTER,
    repeated_failures: int = REPEATED_FAILURES,
) -> Diagnosis:
    findings: list[Finding] = []

    def add(severity: str, code: str, subject: str, message: str, recommendation: str) -> None:
        findings.append(
            Finding(severity=severity, code=code, subject=subject, message=message, recommendation=recommendation)
        )

    if not f.db_ok:
        add(
            "needs-repair",
            "db-unavailable",
            "event log",
            f"the event log is unusable: {f.db_error}",
            "run `uok verify` to locate the damage, then restore the log from a backup (or `uok export --to P` "
            "the intact prefix)",
        )
        return _verdict("needs-repair", findings, ())

    live = {r.run_id: r for r in f.open_runs if r.alive and not r.orphaned}
    for r in f.open_runs:
        if r.orphaned:
            add(
                "needs-repair",
                "orphaned-run",
                r.run_id,
                f"run {r.run_id} (plan {r.plan_id or '?'}, pid {r.pid}) entered and never exited: {r.detail or 'pid not running'}",
                f"`{_run_cmd(r.plan_path)}`: the next kernel closes {r.run_id} as recovered and re-queues its "
                f"in-flight units (see `uok parity`)",
            )
    for rid in f.duplicate_exits:
        add(
            "needs-repair",
            "duplicate-exit",
            rid,
            f"run {rid} has more than one exit record",
            "`uok parity` shows the records; `uok verify` checks the log; this must never happen, report it",
        )

    for w in f.workers:
        why = []
        if w.alive is False:
            why.append(f"pid {w.pid} is not running on {w.host}")
        if w.lost:
            why.append(f"it lost its lease on {w.lost} unit(s): no heartbeat within the lease")
        if w.overdue:
            why.append(f"its lease on {', '.join(w.overdue)} ran out")
        if not why:
            continue
        add(
            "degraded" if w.run_open else "info",
            "dead-worker",
            w.worker,
            f"worker {w.worker} (pid {w.pid} on {w.host}) of run {w.run_id} is dead: {'; '.join(why)}",
            "the coordinator re-queues a dead worker's unit when its lease expires (within its retry budget); "
            "start another `uok worker` to replace it"
            if w.run_open
            else "nothing to repair: its units were re-queued and run by other workers",
        )

    for waiting in f.unserved_runs:
        add(
            "degraded",
            "no-worker",
            waiting.run_id,
            f"run {waiting.run_id} runs its units on `uok worker`s (--claims) and no live worker serves it: "
            f"{waiting.waiting} unit(s) wait",
            f"start `uok worker --run {waiting.run_id}` on a host that reaches the log (docs/scale-out.md)",
        )

    orphan_ids = {r.run_id for r in f.open_runs if r.orphaned}
    remote = {r.run_id: r for r in f.open_runs if r.alive is None and not r.orphaned}
    for r in remote.values():
        add(
            "info",
            "run-unprobeable",
            r.run_id,
            f"run {r.run_id} is open on {r.host or 'another host'} (pid {r.pid}); its liveness cannot be probed from here",
            f"run `uok doctor` on {r.host or 'that host'}; it counts as orphaned once open for 30 min",
        )
    for u in f.in_flight:
        subject = f"{u.plan_id}/{u.unit_id}"
        age = _age(f.now, u.since)
        age_s = f" for {_mins(age)}" if age is not None else ""
        if u.run_id in live:
            limit = timedelta(seconds=u.timeout_s) if u.timeout_s else stale_after
            if age is not None and age > limit:
                run = live[u.run_id]
                add(
                    "degraded",
                    "stuck-unit",
                    subject,
                    f"unit {subject} has been {u.state}{age_s}, beyond its "
                    f"{'timeout of ' + _mins(limit) if u.timeout_s else 'stale limit of 30 min'} (run {u.run_id} is alive)",
                    f"inspect with `uok status` and `uok events`; if the task hangs, stop run {u.run_id} "
                    f"(kill {run.pid}) and `{_run_cmd(run.plan_path)}` to resume",
                )
        elif u.run_id not in orphan_ids and u.run_id not in remote:
            add(
                "needs-repair",
                "unit-without-run",
                subject,
                f"unit {subject} is {u.state}{age_s} but its run {u.run_id or '?'} is not alive",
                "`uok run PLAN` for its plan: the kernel recovers the run and re-queues the unit (see `uok parity`)",
            )

    for b in f.breakers:
        until = f" until {b.open_until.isoformat()}" if b.open_until else ""
        add(
            "degraded",
            "breaker-open",
            b.gate_id,
            f"circuit breaker of gate {b.gate_id} is {b.state}{until}" + (f": {b.reason}" if b.reason else ""),
            f"`uok breakers` shows why; fix what gate {b.gate_id} checks — it is probed again automatically",
        )
    for g in f.failing_gates:
        if g.consecutive_failures >= repeated_failures:
            add(
                "degraded",
                "gate-failing",
                g.gate_id,
                f"gate {g.gate_id} failed its last {g.consecutive_failures} final attempts"
                + (f" ({g.last_rationale})" if g.last_rationale else ""),
                f"`uok sql \"SELECT * FROM gate_runs WHERE gate_id = '{g.gate_id}' ORDER BY position DESC LIMIT 10\"` "
                "shows the failures and their rationale",
            )
    for m in f.past_mismatches:
        healed = m.at is not None and f.last_ok_entered_at is not None and f.last_ok_entered_at > m.at
        if not healed:
            add(
                "degraded",
                f"run-{m.status}",
                m.run_id,
                f"run {m.run_id} ended {m.status}" + (f": {m.detail}" if m.detail else "") + "; no clean run since",
                (
                    f"`uok status` and `uok logs UNIT` show what failed; fix it, then `{_run_cmd(m.plan_path)}` "
                    "(failed and blocked units run again) or `uok retry --failed`: a clean run clears this"
                    if m.status == "failed"
                    else f"`uok parity` and `uok events` for details; a clean `{_run_cmd(m.plan_path)}` clears this"
                ),
            )
    for lost in f.lost_products:
        subject = f"{lost.plan_id}/{lost.unit_id}"
        add(
            "degraded",
            "product-missing",
            subject,
            f"unit {subject} is recorded completed but its declared product {lost.product} is {lost.state}",
            f"`uok retry {lost.plan_path or lost.plan_id} {lost.unit_id}` re-queues it (and what depends on it)",
        )
    for p in f.projections:
        if p.rebuilding:
            add(
                "degraded",
                "projection-rebuilding",
                p.name,
                f"read model {p.name} has an interrupted rebuild",
                f"`uok projections rebuild {p.name}` resumes it",
            )
    behind = sorted((p for p in f.projections if p.lag and not p.rebuilding), key=lambda p: (-p.lag, p.name))
    if behind:
        add(
            "info",
            "projection-lag",
            ", ".join(p.name for p in behind),
            f"{len(behind)} read model(s) behind the log, up to {behind[0].lag} events ({behind[0].name})",
            "nothing to do: read models catch up when read (`uok projections status` shows positions; "
            "`uok projections rebuild` starts them over)",
        )

    quiet_ok = True
    progressing = False
    for r in live.values():
        age = _age(f.now, r.last_event_at or r.entered_at)
        if age is not None and age <= idle_window:
            progressing = True
            continue
        busy = [u for u in f.in_flight if u.run_id == r.run_id]
        if r.paused and not busy:  # idle because an operator paused it: say so, never advise killing it
            add(
                "info",
                "run-paused",
                r.run_id,
                f"run {r.run_id} (pid {r.pid}) is paused: plan {r.plan_id or '?'} dispatches nothing until resumed",
                f"`uok steer {r.run_id} resume` resumes it",
            )
            continue
        within = any(u.timeout_s and u.since and f.now - u.since <= timedelta(seconds=u.timeout_s) for u in busy)
        if not (r.descendants or within):
            quiet_ok = False
            add(
                "degraded",
                "run-idle",
                r.run_id,
                f"run {r.run_id} (pid {r.pid}) is alive but wrote nothing for {_mins(age) if age else '?'}, "
                "with no task process and nothing in flight",
                f"look at process {r.pid}; stop it (kill {r.pid}) and `{_run_cmd(r.plan_path)}` to resume",
            )

    for severity in ("needs-repair", "degraded"):
        if any(x.severity == severity for x in findings):
            return _verdict(severity, findings, tuple(live))
    if live and progressing:
        return _verdict("running", findings, tuple(live))
    if live and quiet_ok:
        return _verdict("quiet-but-healthy", findings, tuple(live))
    return _verdict("healthy", findings, tuple(live))


_SUMMARY = {
    "healthy": "no run is live and nothing needs attention",
    "running": "a run is live and making progress",
    "quiet-but-healthy": "a run is live and quiet, but its tasks are still working within their limits",
    "degraded": "working, but something needs attention",
    "needs-repair": "something is broken and will not heal by itself",
}


def _verdict(c: str, findings: list[Finding], live: tuple[str, ...]) -> Diagnosis:
    order = {"needs-repair": 0, "degraded": 1, "info": 2}
    ordered = tuple(sorted(findings, key=lambda x: order[x.severity]))
    return Diagnosis(classification=c, exit_code=EXIT_CODES[c], summary=_SUMMARY[c], findings=ordered, live_runs=live)
