"""``uok state --at P``: the whole system as of one position of the log."""

from __future__ import annotations

import argparse

from uok.adapters.cli.common import print_plans, read_models
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "state",
        description="""
            Show the system as it was right after the event at position P (default: the head):
            runs, plans' units by state, turns in flight, gates, breakers and costs.
            Computed from the nearest projection snapshot at or before P, folded forward to P;
            nothing is executed. Positions are those printed by `uok events`.
            By default a summary: how many runs by status, the runs open at P and the last 5,
            and the units of the open runs' plans and of the latest run's plan (a long history
            has tens of thousands of units); --all lists every run and every unit, as --json does.
        """,
        examples="""
            uok state
            uok state --at 1200
            uok state --at 1200 --all            # every run and every plan's units
            uok state --at 1200 --run r20260101120000-abc123 --json
            uok state --at 1200 --from-zero     # the slow reference answer
        """,
    )
    p.add_argument("--at", type=int, metavar="P", help="log position (default: the head)")
    p.add_argument("--run", metavar="ID", help="only this run, its plan's units, its turns and its costs")
    p.add_argument(
        "--all",
        action="store_true",
        help="every run and every plan's units, not the summary (--json always prints everything)",
    )
    p.add_argument(
        "--from-zero",
        action="store_true",
        help="ignore snapshots and stored read models: fold the log from position 0 to P "
        "(slower; the reference a snapshot-based answer must equal)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object: the view at P, every run and unit")
    p.set_defaults(func=state)


def view_at(rm, position: int, run: str | None = None, *, from_zero: bool = False, summary: bool = False) -> dict:
    """The system view at ``position``; ``summary``: see ``system_view``."""
    from uok.projections import registry
    from uok.projections.runner import fold_from_zero
    from uok.replay.timetravel import VIEW_PROJECTIONS, run_states, system_view

    if from_zero:
        states = fold_from_zero(rm.pstore, [p for p in registry.ALL if p.name in VIEW_PROJECTIONS], position)
    elif run is not None:  # that run's parts only, with the whole system's breakers and gates
        states = run_states(rm.runner.state_at, position, run, also=("breakers", "gates"))
    else:
        states = rm.runner.state_at(position, VIEW_PROJECTIONS)
    view = system_view(states, position, run=run, summary=summary)
    if run is not None and run not in view["runs"]:
        raise InputError(f"no run {run!r} in the log as of position {position}")
    return view


def state(args: argparse.Namespace) -> int:
    with read_models(args, readonly=True) as rm:
        if not args.from_zero:
            rm.catch_up()
        head = rm.head()
        position = rm.check_position(head if args.at is None else args.at)
        summary = not (args.all or args.json)
        view = view_at(rm, position, args.run, from_zero=args.from_zero, summary=summary)
    view["head"] = head
    if args.json:
        emit(view)
        return 0
    print_view(view)
    return 0


def print_view(v: dict) -> None:
    print(f"state at position {v['position']} (log head {v['head']})")
    if "summary" in v:
        print(summary_line(v))
    else:
        print(f"runs ({len(v['runs'])}):")
    for rid, r in v["runs"].items():
        extra = f"  {r['error']}" if r["error"] else ""
        print(f"  {rid}  {r['status']:<10} plan={r['plan_id']} pid={r['pid']}{extra}")
    print_plans(v["plans"])
    hidden = v["summary"]["plans"] - len(v["plans"]) if "summary" in v else 0
    if hidden:
        print(f"({hidden:,} other plans not shown: --all lists every unit)")
    turns = v["turns_in_flight"]
    print(f"turns in flight ({len(turns)}):" if turns else "turns in flight: none")
    for t in turns:
        print(f"  {t['turn_id']}  {t['unit_id']} attempt {t['attempt']} since {t['started_at']}")
        if t.get("agent_steps"):  # an agent turn: what it has done up to this position (docs/agents.md)
            print(f"    agent: {t['agent_steps']} steps, {t['tool_calls']} tool calls; last:")
            for line in t["recent_steps"]:
                print(f"      {line}")
    if v.get("breakers"):
        print("breakers: " + ", ".join(f"{g}={b['state']}" for g, b in v["breakers"].items()))
    if v.get("gates"):
        print(
            "gates: "
            + "; ".join(
                f"{g} {g_['runs']} runs (" + ", ".join(f"{o}={n}" for o, n in g_["by_outcome"].items()) + ")"
                for g, g_ in v["gates"].items()
            )
        )
    c = v.get("costs")
    if c is not None:
        models = ", ".join(f"{m} ${x['usd']:.4f}" for m, x in c["by_model"].items())
        print(
            f"costs: ${c['usd']:.4f}, {c['input_tokens']:,} in / {c['output_tokens']:,} out tokens"
            + (f" ({models})" if models else "")
        )


def summary_line(v: dict) -> str:
    """``runs: 1,491 (ok=1,300, failed=190, open=1); shown: the 5 latest and every open one``"""
    s = v["summary"]
    counts = ", ".join(f"{k}={n:,}" for k, n in s["runs_by_status"].items())
    shown = len(v["runs"])
    if shown == s["runs"]:
        return f"runs ({s['runs']}):" + (f" {counts}" if counts else "")
    return f"runs: {s['runs']:,} ({counts}); shown: the latest and every open one ({shown}; --all for every run):"
