"""Gathering the facts ``uok doctor`` classifies (behaviour §14).

Everything that touches the outside world happens here: opening and
verifying the log, catching the read models up, probing pids (signal 0),
counting a live run's descendant processes (``/proc``), reading the clock
(passed in, so tests pin it). :func:`uok.domain.policies.diagnosis.diagnose` then
classifies the :class:`uok.domain.policies.diagnosis.Facts` purely.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec
from uok.domain.policies import diagnosis as dx

IN_FLIGHT = frozenset({"claimed", "running", "progress"})
FAILED = frozenset({"fail", "manual-attention"})


def count_descendants(pid: int, proc: Path = Path("/proc")) -> int | None:
    """Live descendant processes of ``pid`` (Linux ``/proc``; None elsewhere)."""
    if not proc.is_dir():
        return None
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    seen, todo = 0, list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        seen += 1
        todo.extend(children.get(child, ()))
    return seen


class _Stamp(msgspec.Struct):
    at: datetime | None = None


_stamp = msgspec.json.Decoder(_Stamp)


def _last_event_at(store, run_id: str) -> datetime | None:
    last = store.last_of_stream(f"run:{run_id}")
    if last is None:
        return None
    try:
        return _stamp.decode(bytes(last.payload)).at
    except msgspec.DecodeError:
        return None


def _paused_plans(store) -> set[str]:
    """Plans whose pause flag is set (the fold of ``SteeringApplied.paused``)."""
    from uok.domain.events import SteeringApplied
    from uok.domain.log import codec

    paused: set[str] = set()
    topics = [f"SteeringApplied/v{v}" for v in range(SteeringApplied.VERSION + 1)]
    for r in store.read(0, topics=topics):
        e = codec.decode(r.topic, r.payload)
        if isinstance(e, SteeringApplied) and e.paused is not None and e.plan_id:
            (paused.add if e.paused else paused.discard)(e.plan_id)
    return paused


def _topics(cls) -> list[str]:
    """Every stored topic of an event class (each version it was written as)."""
    return [f"{cls.__name__}/v{v}" for v in range(1, cls.VERSION + 1)]


def _timeouts(store) -> dict[tuple[str, str], float]:
    """(plan_id, unit_id) -> task timeout, from each plan's latest PlanCompiled."""
    from uok.domain.events import PlanCompiled
    from uok.domain.log import codec
    from uok.domain.plan.content import CompiledGraphs

    out: dict[tuple[str, str], float] = {}
    graphs = CompiledGraphs()
    for r in store.read(0, topics=_topics(PlanCompiled)):
        compiled = codec.decode(r.topic, r.payload)
        if not isinstance(compiled, PlanCompiled):
            continue
        graph = graphs.graph(compiled)
        for node in graph.nodes:
            out[(graph.plan_id, node.id)] = float(node.timeout)
    return out


def _lost_products(store, runs, units) -> list[dx.LostProduct]:
    """Completed units whose declared products (``produces``, behaviour §13)
    are gone now, per plan's latest compiled graph, looked for beside the
    plan file of the plan's latest run."""
    from uok.adapters.artifacts import observe_products
    from uok.domain.events import PlanCompiled
    from uok.domain.log import codec
    from uok.domain.plan.content import CompiledGraphs

    graphs = {}
    resolve = CompiledGraphs()
    for r in store.read(0, topics=_topics(PlanCompiled)):
        compiled = codec.decode(r.topic, r.payload)
        if not isinstance(compiled, PlanCompiled):
            continue
        graph = resolve.graph(compiled)
        if any(n.produces for n in graph.nodes):
            graphs[graph.plan_id] = graph
    paths = {}
    for run in sorted(runs.values(), key=lambda r: (r.entered_at is not None, r.entered_at)):
        if run.plan_id in graphs and run.plan_path:
            paths[run.plan_id] = run.plan_path
    lost = []
    for plan_id, graph in graphs.items():
        part = units.get(plan_id)
        plan_path = paths.get(plan_id, "")
        if part is None or not plan_path:
            continue
        root = Path(plan_path).parent
        for node in graph.nodes:
            u = part.units.get(node.id)
            if node.unit_type == "complete-slice":
                continue  # its tasks' products are reported under the tasks
            if not node.produces or u is None or u.state != "notified" or u.outcome != "completed":
                continue
            for product, state in observe_products(root, node.produces).items():
                if state != "present":
                    lost.append(
                        dx.LostProduct(
                            plan_id=plan_id, unit_id=node.id, product=product, state=state, plan_path=plan_path
                        )
                    )
    return lost


def _worker_facts(store, runs, units, now: datetime) -> tuple[list[dx.WorkerFact], list[dx.UnservedRun]]:
    """Workers of the open runs (none open: of the last run) that joined and
    never left (``uok worker`` killed, or its host lost), with what the log
    and this host say about them; and the open ``--claims`` runs with units
    waiting and no live worker serving them."""
    from uok.adapters.claims import read_claims
    from uok.adapters.eventlog import EventLog
    from uok.adapters.probes import pid_alive

    order = sorted(runs.items(), key=lambda kv: (str(kv[1].entered_at or ""), kv[0]))
    state = read_claims(EventLog(store), [(rid, r.status) for rid, r in order])  # the open runs', or the last run's
    here = socket.gethostname()
    out = []
    for w in state.workers.values():
        if w.left_at is not None:
            continue
        run = runs.get(w.run_id)
        overdue = tuple(
            c.unit_id for c in state.claims.values() if c.worker == w.worker and c.live and c.expires_at() < now
        )
        out.append(
            dx.WorkerFact(
                worker=w.worker, run_id=w.run_id, host=w.host, pid=w.pid,
                alive=pid_alive(w.pid) if w.host == here else None,
                run_open=run is not None and run.status == "open", lost=w.lost, overdue=overdue,
            )
        )  # fmt: skip
    serving = {f.run_id for f in out if f.alive is not False and not f.lost and not f.overdue}
    unserved = []
    for rid, r in runs.items():
        if r.status != "open" or rid in serving or not _claims_run(store, rid):
            continue
        waiting = sum(
            1 for part in units.values() for u in part.units.values() if u.run_id == rid and u.state in IN_FLIGHT
        )
        if waiting:
            unserved.append(dx.UnservedRun(run_id=rid, waiting=waiting))
    return out, unserved


def _claims_run(store, run_id: str) -> bool:
    """True if the run was started with ``--claims`` (its ``KernelEntered``, found through the stream index)."""
    from uok.domain.log import codec

    for r in store.read(0, stream=f"run:{run_id}", limit=1):
        e = codec.decode(r.topic, r.payload)
        return bool(getattr(e, "flags", {}).get("claims"))
    return False


def gather(
    db: Path,
    now: datetime,
    *,
    probe: Callable[[dict], dict] | None = None,
    descendants: Callable[[int], int | None] = count_descendants,
) -> dx.Facts:
    """The facts about the log at ``db`` as of ``now``. A log that cannot be
    opened or whose hash chain is broken is itself the finding."""
    from uok.adapters.probes import probe_open_runs
    from uok.adapters.readmodels import ReadModels
    from uok.adapters.stores import open_event_store
    from uok.domain.log.chain import ChainBroken
    from uok.domain.log.errors import PersistenceError
    from uok.replay.parity import build_report

    from uok.errors import UokError

    probe = probe or probe_open_runs
    try:
        store = open_event_store(db, readonly=True)  # the store factory: the one place a path becomes a store
    except (PersistenceError, OSError, UokError) as e:
        return dx.Facts(now=now, db_ok=False, db_error=str(e))
    try:
        try:
            head, _ = store.verify_chain()
        except (ChainBroken, PersistenceError) as e:
            return dx.Facts(now=now, db_ok=False, db_error=str(e))
        rm = ReadModels(store)
        lag = [dx.ProjectionLag(name=s.name, lag=s.lag, rebuilding=s.rebuilding) for s in rm.runner.status()]
        states = rm.runner.states(["runs", "units", "breakers", "gates"])
        runs = states["runs"]
        probes = probe(runs)
        report = build_report(runs, probes, now=now, source_path=store.location)
        orphaned = {r.run_id: r.detail for r in report.fresh_mismatches}
        paused = _paused_plans(store)
        here = socket.gethostname()
        open_runs = []
        for rid, r in runs.items():
            if r.status != "open" or r.entered_at is None:
                continue
            alive = probes.get(rid)
            local = alive and (not r.host or r.host == here) and r.pid != os.getpid()
            open_runs.append(
                dx.OpenRun(
                    run_id=rid,
                    plan_id=r.plan_id,
                    plan_path=r.plan_path,
                    pid=r.pid,
                    host=r.host,
                    alive=alive,
                    orphaned=rid in orphaned,
                    detail=orphaned.get(rid, ""),
                    entered_at=r.entered_at,
                    last_event_at=_last_event_at(store, rid),
                    descendants=descendants(r.pid) if local else None,
                    paused=r.plan_id in paused,
                )
            )
        timeouts = _timeouts(store)
        in_flight = [
            dx.InFlightUnit(
                plan_id=plan_id,
                unit_id=uid,
                state=u.state,
                run_id=u.run_id,
                since=u.updated_at,
                timeout_s=timeouts.get((plan_id, uid)),
            )
            for plan_id, part in states["units"].items()
            for uid, u in part.units.items()
            if u.state in IN_FLIGHT
        ]
        past = [
            dx.PastMismatch(
                run_id=m.run_id, status=m.status, plan_path=runs[m.run_id].plan_path, at=m.entered_at, detail=m.detail
            )
            for m in report.historical_mismatches
        ]
        past += [  # runs that exited cleanly with units that did not complete: the work is not done
            dx.PastMismatch(run_id=rid, status="failed", plan_path=r.plan_path, at=r.entered_at, detail=r.error)
            for rid, r in runs.items()
            if r.status == "failed"
        ]
        oks = [r.entered_at for r in runs.values() if r.status == "ok" and r.entered_at is not None]
        breakers = [
            dx.OpenBreaker(gate_id=g, state=rec.state, open_until=rec.open_until, reason=rec.reason)
            for g, rec in states["breakers"].gates.items()
            if rec.state != "closed"
        ]
        failing = []
        for gate_id, h in states["gates"].items():
            streak, why = 0, ""
            for run in reversed(h.recent):
                if run.outcome in ("retry", "skip") or run.short_circuited:
                    continue
                if run.outcome not in FAILED:
                    break
                streak += 1
                why = why or run.rationale
            if streak:
                failing.append(dx.FailingGate(gate_id=gate_id, consecutive_failures=streak, last_rationale=why[:160]))
        workers, unserved = _worker_facts(store, runs, states["units"], now)
        return dx.Facts(
            now=now,
            head=head,
            open_runs=tuple(open_runs),
            in_flight=tuple(in_flight),
            past_mismatches=tuple(past),
            last_ok_entered_at=max(oks, default=None),
            breakers=tuple(breakers),
            failing_gates=tuple(failing),
            projections=tuple(lag),
            duplicate_exits=tuple(report.duplicate_exits),
            lost_products=tuple(_lost_products(store, runs, states["units"])),
            workers=tuple(workers),
            unserved_runs=tuple(unserved),
        )
    finally:
        store.close()
