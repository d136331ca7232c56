"""Time travel: the whole system's state as of a position, and what changed
between two positions (or two logs), from the projections alone.

Nothing here executes or decides anything. :func:`system_view` turns the
projections' states at P (see ``ProjectionRunner.state_at``) into one
plain, printable picture: runs, units by state, in-flight turns, gates,
breakers and costs. :func:`diff_views` compares two such pictures.
:func:`first_difference` finds where two logs stop sharing history, by
binary search on the hash chain: equal hashes at position p prove equal
histories up to p.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from uok.replay.fielddiff import builtins


def _iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None else None


LATEST_RUNS = 5  # runs a summary lists besides the open ones
VIEW_PROJECTIONS = ("runs", "units", "turns", "breakers", "gates", "costs")  # what a view is made of


RUN_PROJECTIONS = ("runs", "units", "turns", "costs")  # what a view of one run is made of


def run_states(
    state_at: Callable[..., dict[str, Any]], position: int, run: str, also: Sequence[str] = ()
) -> dict[str, Any]:
    """The read models of one run as of ``position``, as ``state_at`` (a
    ``ProjectionRunner.state_at``) gives them, holding only that run's
    record, turns and costs and its plan's units: no other part is read or
    folded (``also``: whole read models to add, such as breakers and gates).
    The events since the snapshot are read and hash-checked once (the
    second query, for the plan's units, reuses them)."""
    only = {"runs": {run}, "units": (), "turns": {run}, "costs": {run}}
    states = state_at(position, [*RUN_PROJECTIONS, *also], only=only)
    r = states["runs"].get(run)
    plan = r.plan_id if r is not None else ""
    states["units"] = state_at(position, ["units"], only={"units": {plan}})["units"]
    return states


def summary_scope(runs: Mapping[str, Any]) -> tuple[set[str], set[str], dict[str, Any]]:
    """What a summary (the default of ``uok status`` and ``uok state``) shows
    of a long history: the runs open at the position and the last
    :data:`LATEST_RUNS` entered; the units of the open runs' plans and of the
    latest run's plan. Returns (run ids, plan ids, counts of everything)."""
    entered = sorted((r for r in runs.values() if r.entered_position), key=lambda r: r.entered_position)
    shown = {r.run_id for r in entered[-LATEST_RUNS:]}
    plans = {entered[-1].plan_id} if entered else set()
    by_status: Counter[str] = Counter()
    for r in runs.values():
        by_status[r.status] += 1
        if r.status == "open":
            shown.add(r.run_id)
            plans.add(r.plan_id)
    counts = {"runs": len(runs), "runs_by_status": dict(sorted(by_status.items()))}
    return shown, plans, counts


def system_view(
    states: Mapping[str, Any], position: int, *, run: str | None = None, summary: bool = False
) -> dict[str, Any]:
    """A plain-data picture of the system at ``position``. With ``run``,
    only that run, its plan's units, its turns and its costs. With
    ``summary`` (and no ``run``): the runs and plans of :func:`summary_scope`
    only, plus ``summary`` (how many runs by status, how many plans), so
    only those plans' unit records are decoded; turns in flight are those
    of the runs shown (every open run is), breakers, gates and costs the
    whole system's."""
    runs = states.get("runs", {})
    plan_filter: Collection[str] | None = None
    run_filter: Collection[str] | None = None
    view: dict[str, Any] = {"position": position}
    if run is not None:
        r = runs.get(run)
        plan_filter, run_filter = {r.plan_id if r is not None else ""}, {run}
    elif summary:
        run_filter, plan_filter, counts = summary_scope(runs)
        view["summary"] = {**counts, "plans": len(states.get("units", {}))}
    view["runs"] = {
        rid: {
            "status": r.status,
            "plan_id": r.plan_id,
            "pid": r.pid,
            "path": r.path,
            "error": r.error,
            "entered_at": _iso(r.entered_at),
            "exited_at": _iso(r.exited_at),
            "recovered_by": r.recovered_by,
            "units_completed": r.units_completed,
            "units_failed": r.units_failed,
            "work_mode": r.work_mode,
            "model_mode": r.model_mode,
            "mode_changes": r.mode_changes,
        }
        for rid, r in (runs.items() if run_filter is None else ((k, runs[k]) for k in runs if k in run_filter))
    }
    plans: dict[str, Any] = {}
    units_of = states.get("units", {})
    for plan_id in sorted(units_of if plan_filter is None else (p for p in plan_filter if p in units_of)):
        part = units_of[plan_id]
        by_state: Counter[str] = Counter()
        units = {}
        for unit_id, u in part.units.items():
            shown = u.display_state
            by_state[shown] += 1
            units[unit_id] = {
                "state": shown,
                "lifecycle": u.state,
                "attempt": u.attempt,
                "dispatches": u.dispatches,
                "progress": u.progress_count,
                "last_turn": u.turn_id,
                "run_id": u.run_id,
                "failure_class": u.failure_class,
                "reason": u.reason,
                "updated_at": _iso(u.updated_at),
            }
        plans[plan_id] = {"by_state": dict(sorted(by_state.items())), "units": units}
    view["plans"] = plans
    in_flight = []
    turns = states.get("turns", {})
    for rid, part in _items(turns, run) if run is not None or run_filter is None else _only(turns, run_filter):
        for turn_id, t in part.in_flight.items():
            in_flight.append(
                {
                    "run_id": rid,
                    "turn_id": turn_id,
                    "unit_id": t.unit_id,
                    "attempt": t.attempt,
                    "started_at": _iso(t.started_at),
                    "position": t.position,
                    "agent_steps": t.steps,
                    "tool_calls": t.tool_calls,
                    "recent_steps": list(t.recent),
                }
            )
    view["turns_in_flight"] = sorted(in_flight, key=lambda t: t["position"])
    if "breakers" in states:
        book = states["breakers"]
        view["breakers"] = {
            gid: {
                "state": b.state,
                "consecutive_failures": b.consecutive_failures,
                "streak": b.streak,
                "open_until": _iso(b.open_until),
                "short_circuits": b.short_circuits,
            }
            for gid, b in sorted(getattr(book, "gates", {}).items())
        }
    if "gates" in states:
        view["gates"] = {
            gid: {"runs": g.runs, "by_outcome": dict(sorted(g.by_outcome.items())), "short_circuits": g.short_circuits}
            for gid, g in sorted(states["gates"].items())
        }
    if "costs" in states:
        view["costs"] = cost_summary(states["costs"], run)
    return view


def _items(parts: Mapping[str, Any], run: str | None) -> Any:
    """A per-run read model's ``(run id, part)`` pairs, of one run if ``run``
    (without decoding the others' parts)."""
    if run is None:
        return parts.items()
    return [(run, parts[run])] if run in parts else []


def _only(parts: Mapping[str, Any], keys: Collection[str]) -> list[tuple[str, Any]]:
    """``(key, part)`` of these keys, in the read model's order, reading no other part."""
    return [(k, parts[k]) for k in parts if k in keys]


def cost_summary(ledger: Mapping[str, Any], run: str | None = None) -> dict[str, Any]:
    total = {"usd": 0.0, "input_tokens": 0, "output_tokens": 0, "records": 0, "unpriced": 0}
    by_model: dict[str, dict[str, Any]] = {}
    by_run: dict[str, float] = {}
    for rid, c in _items(ledger, run):
        total["usd"] += c.usd
        total["input_tokens"] += c.input_tokens
        total["output_tokens"] += c.output_tokens
        total["records"] += c.records
        total["unpriced"] += c.unpriced
        by_run[rid] = round(c.usd, 6)
        for model, m in c.by_model.items():
            agg = by_model.setdefault(model, {"usd": 0.0, "input_tokens": 0, "output_tokens": 0})
            agg["usd"] += m.usd
            agg["input_tokens"] += m.input_tokens
            agg["output_tokens"] += m.output_tokens
    total["usd"] = round(total["usd"], 6)
    for agg in by_model.values():
        agg["usd"] = round(agg["usd"], 6)
    return {**total, "by_model": dict(sorted(by_model.items())), "by_run": by_run}


def diff_views(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What changed from view ``a`` to view ``b``."""
    units = []
    for plan_id in sorted(set(a["plans"]) | set(b["plans"])):
        ua = a["plans"].get(plan_id, {}).get("units", {})
        ub = b["plans"].get(plan_id, {}).get("units", {})
        for unit_id in list(ua) + [u for u in ub if u not in ua]:
            before, after = ua.get(unit_id), ub.get(unit_id)
            sa = before["state"] if before else None
            sb = after["state"] if after else None
            if sa != sb:  # a unit whose state moved (not merely its timestamps)
                units.append(
                    {
                        "plan_id": plan_id,
                        "unit_id": unit_id,
                        "from": sa,
                        "to": sb,
                        "attempt": (after or before)["attempt"],
                        "dispatches": (after or before)["dispatches"],
                    }
                )
    new_runs = [rid for rid in b["runs"] if rid not in a["runs"]]
    gone_runs = [rid for rid in a["runs"] if rid not in b["runs"]]
    run_changes = [
        {"run_id": rid, "from": a["runs"][rid]["status"], "to": r["status"]}
        for rid, r in b["runs"].items()
        if rid in a["runs"] and a["runs"][rid]["status"] != r["status"]
    ]
    out: dict[str, Any] = {
        "from": a["position"],
        "to": b["position"],
        "units": units,
        "new_runs": new_runs,
        "runs_missing": gone_runs,
        "run_status_changes": run_changes,
    }
    ta = {t["turn_id"] for t in a["turns_in_flight"]}
    tb = {t["turn_id"] for t in b["turns_in_flight"]}
    out["turns_started"] = sorted(tb - ta)
    out["turns_finished"] = sorted(ta - tb)
    if "breakers" in a or "breakers" in b:
        ba, bb = a.get("breakers", {}), b.get("breakers", {})
        out["breakers"] = [
            {"gate_id": g, "from": ba.get(g, {}).get("state", "closed"), "to": bb.get(g, {}).get("state", "closed")}
            for g in sorted(set(ba) | set(bb))
            if ba.get(g, {}).get("state", "closed") != bb.get(g, {}).get("state", "closed")
        ]
    if "costs" in a or "costs" in b:
        ca, cb = a.get("costs", {}), b.get("costs", {})
        out["cost_delta"] = {
            "usd": round(cb.get("usd", 0.0) - ca.get("usd", 0.0), 6),
            "input_tokens": cb.get("input_tokens", 0) - ca.get("input_tokens", 0),
            "output_tokens": cb.get("output_tokens", 0) - ca.get("output_tokens", 0),
        }
    if "gates" in a or "gates" in b:
        ga, gb = a.get("gates", {}), b.get("gates", {})
        out["gate_runs"] = {
            g: gb.get(g, {}).get("runs", 0) - ga.get(g, {}).get("runs", 0)
            for g in sorted(set(ga) | set(gb))
            if gb.get(g, {}).get("runs", 0) != ga.get(g, {}).get("runs", 0)
        }
    return out


def is_empty(d: dict[str, Any]) -> bool:
    keys = (
        "units",
        "new_runs",
        "runs_missing",
        "run_status_changes",
        "turns_started",
        "turns_finished",
        "breakers",
        "gate_runs",
    )
    delta = d.get("cost_delta", {})
    return not any(d.get(k) for k in keys) and not any(delta.values())


def first_difference(
    hash_a: Callable[[int], bytes | None], head_a: int, hash_b: Callable[[int], bytes | None], head_b: int
) -> int | None:
    """The first position at which two hash-chained logs differ (an event
    present in one and not the other counts), or ``None`` if identical.
    O(log n) hash lookups: the chain makes "equal at p" imply "equal up to p"."""
    common = min(head_a, head_b)
    lo, hi = 0, common  # invariant: equal up to lo; if hi > lo, unknown above
    if common and hash_a(common) == hash_b(common):
        lo = common
    else:
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if hash_a(mid) == hash_b(mid):
                lo = mid
            else:
                hi = mid - 1
    if lo == head_a == head_b:
        return None
    return lo + 1


__all__ = [
    "LATEST_RUNS",
    "RUN_PROJECTIONS",
    "VIEW_PROJECTIONS",
    "builtins",
    "cost_summary",
    "diff_views",
    "first_difference",
    "is_empty",
    "run_states",
    "summary_scope",
    "system_view",
]
