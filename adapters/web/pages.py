"""What each page shows, as plain data: runs, a run, a unit, a diff between
two positions, breakers, metrics, the bus. Templates only lay it out.

Every page is "as of" a position: the registered read models' state there
(``ProjectionRunner.state_at``, exactly what ``uok state --at`` reads) plus,
for a run, its timeline folded to the same position. The same functions
serve the live web view (position = the head) and ``uok report``.
"""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from markupsafe import Markup
from uok.adapters.runread import RunReader
from uok.adapters.web import svg
from uok.adapters.web.sections import TURN_SECTIONS, UNIT_SECTIONS
from uok.domain.events import UnitState
from uok.projections.timeline import RunTimeline

from uok.errors import InputError

Href = svg.Href


class NotFound(InputError, LookupError):
    """A run or unit the log does not have (as of the page's position)."""


STATE_ORDER = typing.get_args(UnitState)  # the lifecycle's own order: queued, claimed, running, ...


def ordered_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    known = [(s, counts[s]) for s in STATE_ORDER if counts.get(s)]
    return known + sorted((s, n) for s, n in counts.items() if s not in STATE_ORDER and n)


# --------------------------------------------------------------------------- runs


RUNS_SHOWN = 200
"""The runs list shows the newest this many (of those the filters match)."""


def runs_page(reader: RunReader, position: int, *, status: str = "", plan: str = "") -> dict[str, Any]:
    states = reader.states(position, ["runs", "units", "costs", "turns"])
    units_of_run: dict[str, Counter[str]] = {}
    for part in states["units"].values():
        for u in part.units.values():
            units_of_run.setdefault(u.run_id, Counter())[u.display_state] += 1
    rows = []
    for run in states["runs"].values():
        if run.entered_at is None:
            continue
        cost = states["costs"].get(run.run_id)
        turns = states["turns"].get(run.run_id)
        rows.append(
            {
                "run": run,
                "duration": (run.exited_at - run.entered_at).total_seconds() if run.exited_at else None,
                "units": ordered_counts(dict(units_of_run.get(run.run_id, {}))),
                "usd": cost.usd if cost else 0.0,
                "turns": turns.started if turns else 0,
            }
        )
    rows.sort(key=lambda r: r["run"].entered_position, reverse=True)
    statuses = sorted({r["run"].status for r in rows})
    plans = sorted({r["run"].plan_id for r in rows if r["run"].plan_id})
    shown = [r for r in rows if (not status or r["run"].status == status) and (not plan or r["run"].plan_id == plan)]
    return {
        "rows": shown[:RUNS_SHOWN],
        "matching": len(shown),
        "total": len(rows),
        "statuses": statuses,
        "plans": plans,
        "status_filter": status,
        "plan_filter": plan,
    }


# --------------------------------------------------------------------------- one run


class LoadedRun(msgspec.Struct, kw_only=True):
    """One run as of a position: its read-model rows and its timeline."""

    run: Any
    states: dict[str, Any]
    tl: RunTimeline
    position: int


def load_run(reader: RunReader, run_id: str, position: int) -> LoadedRun:
    states = reader.states(position, ["runs", "units", "costs", "turns", "gates"])
    run = states["runs"].get(run_id)
    if run is None or run.entered_at is None:
        raise NotFound(f"no run {run_id!r} in the log as of position {position}")
    return LoadedRun(run=run, states=states, tl=reader.timeline(run_id, position), position=position)


def totals(tl: RunTimeline, cost: Any) -> dict[str, Any]:
    by_status = Counter(t.status for t in tl.turns.values())
    gates = [g for t in tl.turns.values() for g in t.gates]
    return {
        "turns": len(tl.turns),
        "by_status": sorted(by_status.items()),
        "failures": sum(by_status[s] for s in ("failed", "retry")),
        "gate_runs": len(gates),
        "gate_failures": sum(1 for g in gates if g.outcome not in ("pass", "skip")),
        "usd": cost.usd if cost else 0.0,
        "input_tokens": cost.input_tokens if cost else 0,
        "output_tokens": cost.output_tokens if cost else 0,
        "chaos": sum(1 for m in tl.marks if m.kind == "chaos"),
    }


def _records(loaded: LoadedRun) -> dict[str, Any]:
    part = loaded.states["units"].get(loaded.run.plan_id)
    return part.units if part is not None else {}


def run_page(loaded: LoadedRun, href: Href) -> dict[str, Any]:
    run, tl = loaded.run, loaded.tl
    records = _records(loaded)
    unit_states = {u: r.display_state for u, r in records.items()}
    cost = loaded.states["costs"].get(run.run_id)
    by_unit = cost.by_unit if cost else {}
    rows = []
    for n in tl.nodes():
        rec = records.get(n.id)
        turns = tl.turns_of(n.id)
        rows.append(
            {
                "node": n,
                "state": rec.display_state if rec else "pending",
                "record": rec,
                "turns": len(turns),
                "last": turns[-1].status if turns else "",
                "usd": by_unit.get(n.id, 0.0),
                "href": href(n.id, ""),
            }
        )
    right = tl.exited_at or tl.last_at
    return {
        "run": run,
        "tl": tl,
        "href": href,
        "duration": (right - tl.entered_at).total_seconds() if right and tl.entered_at else 0.0,
        "totals": totals(tl, cost),
        "timeline": Markup(svg.timeline_svg(tl, href)),
        "graph": Markup(svg.graph_svg(tl.nodes(), unit_states, href)),
        "units": rows,
        "by_state": ordered_counts(dict(Counter(r["state"] for r in rows))),
        "marks": [m for m in tl.marks if m.kind != "exit"],
    }


def unit_page(reader: RunReader, loaded: LoadedRun, unit_id: str, href: Href) -> dict[str, Any]:
    run, tl = loaded.run, loaded.tl
    node = next((n for n in tl.nodes() if n.id == unit_id), None)
    record = _records(loaded).get(unit_id)
    turns = tl.turns_of(unit_id)
    if node is None and record is None and not turns:
        raise NotFound(f"no unit {unit_id!r} in run {run.run_id} as of position {loaded.position}")
    ctx = {
        "run": run,
        "tl": tl,
        "href": href,
        "unit_id": unit_id,
        "node": node,
        "record": record,
        "unit_state": record.display_state if record else "pending",
        "turns": turns,
        "history": reader.unit_history(run.plan_id, unit_id, loaded.position) if run.plan_id else [],
    }
    ctx["sections"] = [s for s in UNIT_SECTIONS if s.shows(ctx)]
    ctx["turn_sections"] = TURN_SECTIONS
    return ctx


def report_units(reader: RunReader, loaded: LoadedRun, href: Href) -> list[dict[str, Any]]:
    """Every unit of the run that had a turn (in order of its first turn), with what its page shows."""
    seen = list(dict.fromkeys(t.unit_id for t in loaded.tl.turns.values()))
    return [unit_page(reader, loaded, u, href) for u in seen]


# --------------------------------------------------------------------------- the system


DIFF_UNIT_ROWS = 500
"""A diff page lists at most this many units (a diff across a long history
can move tens of thousands; ``uok diff A B --json`` lists them all)."""


def diff_page(reader: RunReader, a: int, b: int, run: str | None = None) -> dict[str, Any]:
    from uok.replay.timetravel import diff_views, is_empty, system_view

    va = system_view(reader.states(a), a, run=run)
    vb = system_view(reader.states(b), b, run=run)
    d = diff_views(va, vb)
    return {"a": a, "b": b, "diff": d, "empty": is_empty(d), "run_filter": run or "", "unit_rows": DIFF_UNIT_ROWS}


def breakers_page(reader: RunReader, position: int) -> dict[str, Any]:
    states = reader.states(position, ["breakers", "gates"])
    book, gates = states["breakers"], states["gates"]
    rows = []
    for gate_id in sorted(set(book.gates) | set(gates)):
        rows.append({"gate_id": gate_id, "breaker": book.gates.get(gate_id), "history": gates.get(gate_id)})
    return {"rows": rows}


def stats_page(reader: RunReader, position: int) -> dict[str, Any]:
    from uok.adapters.metrics_http import LE
    from uok.projections.metrics import SOURCES, snapshot

    snap = snapshot(reader.states(position, list(SOURCES)), position)
    histograms = []
    for title, label, rows in (
        ("Turn duration", "status", snap.turn_seconds),
        ("Execution duration", "outcome", snap.execution_seconds),
        ("Gate run duration", "gate", snap.gate_run_seconds),
    ):
        for value, h in rows.items():
            per_bucket = [c - (h.cumulative[i - 1] if i else 0) for i, c in enumerate(h.cumulative)]
            top = max(per_bucket) or 1
            bars = [(LE[i], n, round(100 * n / top)) for i, n in enumerate(per_bucket)]
            histograms.append({"title": title, "label": label, "value": value, "h": h, "bars": bars})
    return {"snap": snap, "histograms": histograms}


def bus_page(reader: RunReader, position: int) -> dict[str, Any]:
    inbox = reader.states(position, ["inbox"])["inbox"]
    agents = []
    for name in sorted(inbox.agents):
        box = inbox.agents[name]
        agents.append({"name": name, "box": box, "messages": list(reversed(box.messages.values()))})
    conversations: dict[tuple[str, str], list] = {pair: [] for pair in sorted(inbox.pairs)}
    for box in inbox.agents.values():
        for m in box.messages.values():
            conversations.setdefault(tuple(sorted((m.sender, m.recipient))), []).append(m)
    convs = [{"a": a, "b": b, "messages": sorted(ms, key=lambda m: m.position)} for (a, b), ms in conversations.items()]
    return {"inbox": inbox, "agents": agents, "conversations": convs}


def evals_page(reader: RunReader, position: int) -> dict[str, Any]:
    """Every eval recorded as of ``position``, newest first: its variants
    ranked with intervals and the comparisons with the best (docs/evals.md)."""
    from uok.adapters.evalreport import report
    from uok.adapters.evals import eval_runs

    runs = eval_runs(reader.states(position, ["evals"]))
    ids = list(dict.fromkeys(r.eval_id for r in runs))
    return {"evals": [report(e, [r for r in runs if r.eval_id == e]) for e in reversed(ids)]}


def to_json(data: Any) -> bytes:
    """Deterministic JSON of page data (for the API and tests)."""
    return msgspec.json.encode(data, order="sorted")


Builder = Callable[..., dict[str, Any]]
