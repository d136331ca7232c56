"""``uok plan``: check a plan, and look at its compiled graph, before it runs
(behaviour §11: the plan is compiled and written out for inspection).

Neither action opens or creates an event log: a plan can be checked in CI
or in an editor's save hook with nothing written anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uok.adapters.cli.framework import add_action, add_actions, add_command
from uok.adapters.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "plan",
        description="""
            Check a plan, or print its compiled unit graph, without running it and without
            touching any event log.
        """,
        examples="""
            uok plan validate plan.toml
            uok plan show plan.toml
            uok plan show plan.toml --json | jq '.graph.order'
            uok plan show plan.toml --dot | dot -Tsvg > plan.svg
        """,
        log=False,
    )
    actions = add_actions(p, "plan_command")

    v = add_action(
        actions,
        "validate",
        help="check a plan (and its config) as `uok run` would; exit 0 or 2",
        description="""
            Compile PLAN and resolve its config, gates and settings exactly as `uok run` does
            before it opens the log. Exit 0 and print a one-line summary if the run could
            start; exit 2 with one line naming the file and the problem if not. Nothing is
            written.
        """,
        examples="""
            uok plan validate plan.toml
            uok plan validate plan.toml --config ci.toml --json
        """,
        log=False,
    )
    v.add_argument("plan", metavar="PLAN", help="plan file (TOML)")
    v.add_argument("--config", metavar="PATH", type=Path, help="config file (TOML), as for `uok run`")
    v.add_argument("--json", action="store_true", help="one JSON object: ok, plan_id, units, tasks, conflicts")
    v.set_defaults(func=validate)

    s = add_action(
        actions,
        "show",
        help="print the compiled graph: text, JSON (as PlanCompiled records it), DOT or Mermaid",
        description="""
            Compile PLAN and print its unit graph: by default one line per unit in run order
            with its dependencies and the files it writes, then the file conflicts and the
            pipeline facts: each required artifact (and its draft) as present, blank or
            missing now, the units that would be held and why, each clarify task's rounds.
            --json prints {"graph": ..., "pipeline": {"artifacts", "held", "clarify_rounds"}}:
            "graph" is exactly the graph a run records in its PlanCompiled event.
            --dot prints Graphviz DOT, --mermaid a Mermaid flowchart.
        """,
        examples="""
            uok plan show plan.toml
            uok plan show plan.toml --json | jq -r '.graph.conflicts[] | .file'
            uok plan show plan.toml --dot | dot -Tpng -o plan.png
            uok plan show plan.toml --mermaid >> README.md
        """,
        log=False,
    )
    s.add_argument("plan", metavar="PLAN", help="plan file (TOML)")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help='one JSON object: {"graph": ... as PlanCompiled records it, "pipeline": {artifacts, held, clarify_rounds}}',
    )
    fmt.add_argument("--dot", action="store_true", help="Graphviz DOT (render with `dot -Tsvg`)")
    fmt.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart")
    s.set_defaults(func=show)


def validate(args: argparse.Namespace) -> int:
    from uok import bootstrap

    prepared = bootstrap.prepare_run(Path(args.plan), config=args.config)
    graph = prepared.graph
    tasks = sum(1 for n in graph.nodes if n.kind == "unit")
    if args.json:
        emit(
            {
                "ok": True,
                "plan_id": graph.plan_id,
                "units": len(graph.nodes),
                "tasks": tasks,
                "conflicts": len(graph.conflicts),
            }
        )
    else:
        print(
            f"ok: plan {graph.plan_id}: {len(graph.nodes)} units ({tasks} tasks), {len(graph.conflicts)} file conflicts"
        )
    return 0


def show(args: argparse.Namespace) -> int:
    from uok.adapters import planview
    from uok.adapters.artifacts import ArtifactWatch
    from uok.adapters.runner import load_plan

    path = Path(args.plan)
    _source, graph = load_plan(path)
    facts = planview.pipeline(graph, ArtifactWatch(path.parent, graph).observe())
    if args.json:
        emit({**planview.graph_json(graph), "pipeline": facts})
    elif args.dot:
        sys.stdout.write(planview.graph_dot(graph))
    elif args.mermaid:
        sys.stdout.write(planview.graph_mermaid(graph))
    else:
        sys.stdout.write(planview.graph_text(graph) + planview.pipeline_text(facts))
    return 0
