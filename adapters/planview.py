"""A compiled plan as people and tools read it: text, JSON, Graphviz DOT and
Mermaid (``uok plan show``, behaviour §11: "writes the graph out for
inspection").

The JSON is exactly what ``PlanCompiled`` records (``{"graph": ...}``, the
graph encoded as the log encodes it), so a script can diff a plan before it
runs against the graph a run compiled. DOT and Mermaid draw the same nodes
and edges: an ``execute-task`` unit is a box, a ``complete-slice``
verification unit a diamond-ish shape, a file conflict a dashed red edge.
"""

from __future__ import annotations

from typing import Any

import msgspec
from uok.domain.plan import UnitGraph

_ENCODER = msgspec.json.Encoder()


def graph_json(graph: UnitGraph) -> dict[str, Any]:
    """``{"graph": ...}`` as ``PlanCompiled`` stores it (msgspec's encoding,
    decoded back to plain JSON values)."""
    return {"graph": msgspec.json.decode(_ENCODER.encode(graph))}


def pipeline(graph: UnitGraph, artifacts: dict[str, str]) -> dict[str, Any]:
    """The plan-v2 facts (behaviour §11): each required artifact and draft as
    the shell sees it now (``present`` | ``blank`` | ``missing``), the units
    that would be held and why, and each clarify task's rounds."""
    from uok.domain.plan.artifacts import hold_reasons

    held = {n.id: list(r) for n in graph.nodes if n.requires and (r := hold_reasons(n.requires, artifacts))}
    return {
        "artifacts": artifacts,
        "held": held,
        "clarify_rounds": {n.id: n.clarify_rounds for n in graph.nodes if n.clarify_rounds},
    }


def pipeline_text(facts: dict[str, Any]) -> str:
    lines: list[str] = []
    if facts["artifacts"]:
        lines += ["", "artifacts:"] + [f"  {state:<8} {path}" for path, state in facts["artifacts"].items()]
    if facts["held"]:
        lines += ["", "held until their artifacts exist:"]
        lines += [f"  {unit}: {'; '.join(why)}" for unit, why in facts["held"].items()]
    if facts["clarify_rounds"]:
        lines += ["", "clarify rounds:"] + [f"  {unit}: {n}" for unit, n in facts["clarify_rounds"].items()]
    return "\n".join(lines) + ("\n" if lines else "")


def _dot_id(text: str) -> str:
    """A DOT double-quoted id (ids may hold ``:`` and ``/``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_dot(graph: UnitGraph) -> str:
    """Graphviz DOT: one cluster per milestone/slice, edges dependency -> dependent."""
    lines = [f"digraph {_dot_id(graph.plan_id)} {{", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    if graph.title:
        lines.append(f"  label={_dot_id(graph.title)};")
    clusters: dict[tuple[str, str], list[str]] = {}
    for node in graph.nodes:
        clusters.setdefault((node.milestone, node.slice), []).append(node.id)
    by_id = {n.id: n for n in graph.nodes}
    for i, ((milestone, slice_id), ids) in enumerate(clusters.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_dot_id(f'{milestone}/{slice_id}')};")
        for nid in ids:
            node = by_id[nid]
            shape = "box" if node.kind == "unit" else "octagon"
            label = nid if not node.title or node.title == nid else f"{nid}\n{node.title}"
            lines.append(f"    {_dot_id(nid)} [shape={shape}, label={_dot_id(label)}];")
        lines.append("  }")
    for node in graph.nodes:
        for dep in node.depends_on:
            lines.append(f"  {_dot_id(dep)} -> {_dot_id(node.id)};")
    for c in graph.conflicts:
        lines.append(
            f"  {_dot_id(c.node_a)} -> {_dot_id(c.node_b)} "
            f"[style=dashed, color=red, dir=none, constraint=false, label={_dot_id(c.file)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def graph_mermaid(graph: UnitGraph) -> str:
    """A Mermaid flowchart; node ids are ``n0, n1, ...`` (Mermaid ids cannot
    hold ``:`` or ``/``) labelled with the unit ids."""
    alias = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node in graph.nodes:
        label = _mermaid_text(node.id)
        lines.append(
            f'  {alias[node.id]}["{label}"]' if node.kind == "unit" else f'  {alias[node.id]}{{{{"{label}"}}}}'
        )
    for node in graph.nodes:
        for dep in node.depends_on:
            if dep in alias:
                lines.append(f"  {alias[dep]} --> {alias[node.id]}")
    for c in graph.conflicts:
        lines.append(f'  {alias[c.node_a]} -. "{_mermaid_text(c.file)}" .- {alias[c.node_b]}')
    return "\n".join(lines) + "\n"


def graph_text(graph: UnitGraph) -> str:
    """One line per unit in run order (kind, dependencies, writes), then the conflicts."""
    by_id = {n.id: n for n in graph.nodes}
    units = sum(1 for n in graph.nodes if n.kind == "unit")
    head = f"plan {graph.plan_id}" + (f": {graph.title}" if graph.title else "")
    lines = [head, f"{len(graph.nodes)} units ({units} tasks), {len(graph.conflicts)} file conflicts", ""]
    for nid in graph.order:
        node = by_id[nid]
        deps = f"  after {', '.join(node.depends_on)}" if node.depends_on else ""
        writes = f"  writes {', '.join(node.writes)}" if node.writes else ""
        intents = "".join(
            f"  {kind} {', '.join(pats)}"
            for kind, pats in (("reads", node.read_intents), ("touches", node.write_intents))
            if pats
        )
        lines.append(f"  {node.unit_type:<15} {nid}{deps}{writes}{intents}")
    if graph.conflicts:
        lines.append("")
        lines.append("file conflicts (never run at the same time):")
        for c in graph.conflicts:
            lines.append(f"  {c.file}: {c.node_a} <-> {c.node_b}")
    from uok.domain.plan.intents import intent_conflicts

    implied = intent_conflicts(graph.nodes)
    if implied:
        lines.append("")
        lines.append("intent conflicts (never run at the same time; behaviour §12):")
        for a, b, why in implied:
            lines.append(f"  {a} <-> {b}: {why}")
    return "\n".join(lines) + "\n"
