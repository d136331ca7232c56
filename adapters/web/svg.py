"""The pictures of a run, drawn on the server as inline SVG: the timeline
(one lane per unit, one bar per turn) and the unit graph.

Server-side so that the web view, the self-contained report and a page
with scripts disabled show the same thing, and so that a drawing is a pure
function of the read models: the same log gives the same bytes (every
number is rounded to one decimal and every list is in log or plan order).
Links come from the caller (``href``), because the web view links to unit
pages and the report to anchors in the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape

from uok.domain.plan.model import UnitNode
from uok.projections.timeline import RunTimeline, TurnDetail

Href = Callable[[str, str], str]  # (unit id, turn id or "") -> URL

WIDTH = 1100
LABEL = 190  # the lane labels' column
LANE = 24
BAR = 14
TOP = 30  # room for the time axis


def _f(x: float) -> str:
    return f"{x:.1f}"


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def duration_text(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def _ticks(span: float) -> list[float]:
    """About five round tick values (seconds) across ``span``."""
    for step in (
        0.001,
        0.002,
        0.005,
        0.01,
        0.02,
        0.05,
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        1800,
        3600,
    ):
        if span / step <= 6:
            return [i * step for i in range(int(span / step) + 1)]
    step = 7200.0
    return [i * step for i in range(int(span / step) + 1)]


def _tick_label(t: float) -> str:
    if t == 0:
        return "0"
    if t < 1:
        return f"{t * 1000:.0f}ms"
    if t < 120:
        return f"{t:g}s"
    return f"{t / 60:g}m"


def timeline_svg(tl: RunTimeline, href: Href, *, end: datetime | None = None) -> str:
    """One lane per unit that had a turn (in order of its first turn), one bar
    per turn from its start to its finish (to ``end``, the right edge, while
    in flight), coloured by status; gate runs as ticks under the bar; chaos
    injections, pauses, breaker moves and the exit as marks."""
    turns = list(tl.turns.values())
    start = tl.entered_at or (turns[0].started_at if turns else None)
    right = end or tl.exited_at or tl.last_at
    if start is None or right is None:
        return '<p class="empty">No turn yet.</p>'
    span = max(_seconds(start, right), 0.001)
    lanes: dict[str, int] = {}
    for t in turns:
        lanes.setdefault(t.unit_id, len(lanes))
    height = TOP + max(1, len(lanes)) * LANE + 10
    plot = WIDTH - LABEL - 10

    def x(at: datetime) -> float:
        return LABEL + max(0.0, min(1.0, _seconds(start, at) / span)) * plot

    out = [
        (
            f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
            f'aria-label="timeline of run {escape(tl.run_id)}: {len(turns)} turns" xmlns="http://www.w3.org/2000/svg">'
        )
    ]
    for tick in _ticks(span):
        tx = LABEL + tick / span * plot
        out.append(f'<line class="tick" x1="{_f(tx)}" y1="{TOP - 6}" x2="{_f(tx)}" y2="{height - 6}"/>')
        out.append(f'<text class="axis" x="{_f(tx)}" y="{TOP - 10}">{_tick_label(tick)}</text>')
    for unit_id, lane in lanes.items():
        y = TOP + lane * LANE
        cls = "lane odd" if lane % 2 else "lane"
        out.append(f'<rect class="{cls}" x="0" y="{y}" width="{WIDTH}" height="{LANE}"/>')
        label = unit_id if len(unit_id) <= 26 else unit_id[:25] + "…"
        out.append(
            f'<a href="{escape(href(unit_id, ""))}"><text class="lane-label" x="6" y="{y + 16}">'
            f"<title>{escape(unit_id)}</title>{escape(label)}</text></a>"
        )
    out += _pauses(tl, x, height)
    for t in turns:
        out.append(_bar(t, lanes[t.unit_id], x, right, href))
    out += _marks(tl, lanes, x)
    out.append("</svg>")
    return "".join(out)


def _bar(t: TurnDetail, lane: int, x, right: datetime, href: Href) -> str:
    y = TOP + lane * LANE + (LANE - BAR) / 2
    x0 = x(t.started_at)
    x1 = x(t.finished_at or right)
    w = max(3.0, x1 - x0)
    seconds = _seconds(t.started_at, t.finished_at or right)
    status = t.status
    tip = f"{t.unit_id} attempt {t.attempt}: {status}, {duration_text(seconds)}"
    if t.error:
        tip += f" ({t.error[:120]})"
    gates = ", ".join(f"{g.gate_id}:{g.outcome}" for g in t.gates)
    if gates:
        tip += f"; gates {gates}"
    parts = [
        f'<a href="{escape(href(t.unit_id, t.turn_id))}">',
        (
            f'<rect class="bar s-{escape(status)}" data-turn="{escape(t.turn_id)}" data-unit="{escape(t.unit_id)}" '
            f'data-status="{escape(status)}" x="{_f(x0)}" y="{_f(y)}" width="{_f(w)}" height="{BAR}" rx="2">'
            f"<title>{escape(tip)}</title></rect>"
        ),
    ]
    if t.attempt > 1 and w > 14:
        parts.append(f'<text class="attempt" x="{_f(x0 + 3)}" y="{_f(y + 11)}">#{t.attempt}</text>')
    for g in t.gates:  # a tick from the attempt's start to its decision
        gx1 = x(g.at)
        gx0 = x(g.at - timedelta(milliseconds=g.duration_ms))
        gw = max(3.0, gx1 - gx0)
        parts.append(
            f'<rect class="gate g-{escape(g.outcome)}" x="{_f(gx1 - gw)}" y="{_f(y + BAR - 1)}" width="{_f(gw)}" '
            'height="5">'
            f"<title>gate {escape(g.gate_id)} attempt {g.attempt}: {escape(g.outcome)}</title></rect>"
        )
    parts.append("</a>")
    return "".join(parts)


def _pauses(tl: RunTimeline, x, height: int) -> list[str]:
    out, since = [], None
    for m in tl.marks:
        if m.kind == "pause" and since is None:
            since = m.at
        elif m.kind == "resume" and since is not None:
            out.append(_band(x(since), x(m.at), height))
            since = None
    if since is not None and tl.last_at is not None:
        out.append(_band(x(since), x(tl.exited_at or tl.last_at), height))
    return out


def _band(x0: float, x1: float, height: int) -> str:
    return (
        f'<rect class="paused" x="{_f(x0)}" y="{TOP - 4}" width="{_f(max(2.0, x1 - x0))}" height="{height - TOP}">'
        "<title>paused</title></rect>"
    )


def _marks(tl: RunTimeline, lanes: dict[str, int], x) -> list[str]:
    out = []
    for m in tl.marks:
        if m.kind in ("pause", "resume"):
            continue
        mx = x(m.at)
        lane = lanes.get(m.unit_id)
        y = TOP + lane * LANE + 2 if lane is not None else TOP - 4
        tip = escape(f"{m.kind} @{m.position}: {m.label}")
        if m.kind == "chaos":
            out.append(f'<path class="mark chaos" d="M{_f(mx)},{_f(y)} l5,9 l-10,0 z"><title>{tip}</title></path>')
        elif m.kind == "exit":
            out.append(f'<line class="mark exit" x1="{_f(mx)}" y1="{TOP - 6}" x2="{_f(mx)}" y2="{_f(y + 2000)}"/>')
        else:
            out.append(
                f'<rect class="mark {escape(m.kind)}" x="{_f(mx - 3)}" y="{TOP - 8}" width="6" height="6" '
                f'transform="rotate(45 {_f(mx)} {TOP - 5})"><title>{tip}</title></rect>'
            )
    return out


# --------------------------------------------------------------------------- the unit graph

NODE_W, NODE_H, COL_GAP, ROW_GAP = 170, 26, 46, 10


def layers(nodes: list[UnitNode]) -> dict[str, int]:
    """Each unit's column: 0 for units with no dependency in the graph, else
    one more than its deepest dependency (dependencies outside the graph are
    ignored; a cycle, which the compiler refuses, cannot loop here)."""
    by_id = {n.id: n for n in nodes}
    depth: dict[str, int] = {}

    def of(unit_id: str, trail: frozenset[str]) -> int:
        if unit_id in depth:
            return depth[unit_id]
        deps = [d for d in by_id[unit_id].depends_on if d in by_id and d not in trail]
        depth[unit_id] = 1 + max((of(d, trail | {unit_id}) for d in deps), default=-1)
        return depth[unit_id]

    for n in nodes:
        of(n.id, frozenset())
    return depth


def graph_svg(nodes: list[UnitNode], states: dict[str, str], href: Href) -> str:
    """The units as boxes in dependency columns, coloured by their state as
    of the page's position (``pending``: not yet planned then)."""
    if not nodes:
        return '<p class="empty">No plan compiled yet.</p>'
    depth = layers(nodes)
    rows: dict[int, int] = {}
    at: dict[str, tuple[float, float]] = {}
    for n in nodes:
        col = depth[n.id]
        row = rows.get(col, 0)
        rows[col] = row + 1
        at[n.id] = (10 + col * (NODE_W + COL_GAP), 10 + row * (NODE_H + ROW_GAP))
    width = 20 + (max(depth.values()) + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = 20 + max(rows.values()) * (NODE_H + ROW_GAP) - ROW_GAP
    out = [
        (
            f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" role="img" '
            f'aria-label="unit graph: {len(nodes)} units" xmlns="http://www.w3.org/2000/svg">'
        )
    ]
    for n in nodes:
        x1, y1 = at[n.id]
        for d in n.depends_on:
            if d not in at:
                continue
            x0, y0 = at[d]
            sx, sy, ex, ey = x0 + NODE_W, y0 + NODE_H / 2, x1, y1 + NODE_H / 2
            mid = (sx + ex) / 2
            out.append(
                f'<path class="edge" d="M{_f(sx)},{_f(sy)} C{_f(mid)},{_f(sy)} {_f(mid)},{_f(ey)} {_f(ex)},{_f(ey)}"/>'
            )
    for n in nodes:
        x0, y0 = at[n.id]
        state = states.get(n.id, "pending")
        label = n.id if len(n.id) <= 24 else n.id[:23] + "…"
        tip = f"{n.id}: {state}" + (f" — {n.title}" if n.title else "")
        out.append(
            f'<a href="{escape(href(n.id, ""))}"><g class="node st-{escape(state)}" data-unit="{escape(n.id)}" '
            f'data-state="{escape(state)}"><title>{escape(tip)}</title>'
            f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
            f'<text x="{_f(x0 + 8)}" y="{_f(y0 + 17)}">{escape(label)}</text></g></a>'
        )
    out.append("</svg>")
    return "".join(out)
