"""Metrics (spec §15) as a fold of the log, plus the snapshot that combines
it with the other read models.

Most of what ``/metrics`` reports is already folded by a projection:
gate outcomes (``gates``), breakers (``breakers``, the kernel's own fold),
units (``units``), turns (``turns``), runs (``runs``), costs (``costs``),
the message bus (``inbox``). What none of them keeps is each gate's
latency *distribution*, which p50/p95 need, so :class:`MetricsProjection`
folds exactly that: per gate, how many executed attempts took each number
of milliseconds. Quantiles from these counts are exact (nearest rank) and
deterministic, unlike a sampled reservoir, and the state stays small
(one entry per distinct duration).

:func:`snapshot` is pure: projection states in, plain numbers out. It
serves the live endpoint and ``uok metrics --at P`` alike; only the
positions the states were folded to differ.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import msgspec
from uok.domain.events import Event
from uok.projections.base import PartitionedProjection

GAUGE = {"closed": 0, "half-open": 1, "open": 2}
SOURCES = ("metrics", "gates", "breakers", "units", "turns", "runs", "costs", "inbox")
"""The projections a snapshot is made of (by registry name)."""


class GateLatency(msgspec.Struct, kw_only=True):
    counts: dict[int, int] = {}  # duration_ms -> attempts that took it
    total_ms: int = 0
    n: int = 0


class MetricsProjection(PartitionedProjection):
    """Per gate, the durations of its executed attempts (short-circuited
    attempts did not execute and are left out). One part per gate."""

    name: ClassVar[str] = "metrics"
    version: ClassVar[int] = 1
    part_type: ClassVar[type] = GateLatency
    types: ClassVar[frozenset[str]] = frozenset({"GateRun"})

    def key(self, event: Event) -> str | None:
        return None if event.short_circuited else event.gate_id  # type: ignore[attr-defined]

    def apply_part(self, part: GateLatency, position: int, e) -> GateLatency:
        ms = max(0, int(e.duration_ms))
        part.counts[ms] = part.counts.get(ms, 0) + 1
        part.total_ms += ms
        part.n += 1
        return part


def quantile(counts: dict[int, int], n: int, q: float) -> float:
    """Nearest-rank quantile of a duration -> count map (0 when empty)."""
    if n <= 0:
        return 0.0
    rank = max(1, math.ceil(q * n))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return float(max(counts))


# --------------------------------------------------------------------------- snapshot


class GateMetrics(msgspec.Struct, kw_only=True):
    runs: int = 0
    passes: int = 0
    failures: int = 0
    retries: int = 0
    manual_attention: int = 0
    skips: int = 0
    short_circuits: int = 0
    latency_avg: float = 0.0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    latency_max: float = 0.0
    latency_count: int = 0
    breaker_state: int | None = None  # 0 closed, 1 half-open, 2 open; None: no breaker watches it


class MetricsSnapshot(msgspec.Struct, kw_only=True):
    position: int  # the log position the states were folded to
    gates: dict[str, GateMetrics] = {}
    units_by_state: dict[str, int] = {}
    turns_by_status: dict[str, int] = {}
    turns_started: int = 0
    turns_in_flight: int = 0
    runs_by_status: dict[str, int] = {}
    cost_usd_by_model: dict[str, float] = {}
    tokens_by_model: dict[str, tuple[int, int]] = {}  # (input, output)
    messages_total: int = 0
    messages_unread: int = 0
    message_agents: int = 0
    message_conversations: int = 0
    projection_lag: dict[str, int] = {}


def snapshot(states: dict[str, Any], position: int, lag: dict[str, int] | None = None) -> MetricsSnapshot:
    """Combine the states of :data:`SOURCES` (any may be missing) into numbers."""
    snap = MetricsSnapshot(position=position, projection_lag=dict(sorted((lag or {}).items())))
    gates: dict[str, GateMetrics] = {}
    for gate_id, h in (states.get("gates") or {}).items():
        g = gates.setdefault(gate_id, GateMetrics())
        by = h.by_outcome
        g.runs, g.short_circuits = h.runs, h.short_circuits
        g.passes, g.failures, g.retries = by.get("pass", 0), by.get("fail", 0), by.get("retry", 0)
        g.manual_attention, g.skips = by.get("manual-attention", 0), by.get("skip", 0)
    for gate_id, lat in (states.get("metrics") or {}).items():
        g = gates.setdefault(gate_id, GateMetrics())
        g.latency_count = lat.n
        if lat.n:
            g.latency_avg = lat.total_ms / lat.n
            g.latency_p50 = quantile(lat.counts, lat.n, 0.50)
            g.latency_p95 = quantile(lat.counts, lat.n, 0.95)
            g.latency_max = float(max(lat.counts))
    book = states.get("breakers")
    for gate_id, rec in (book.gates if book is not None else {}).items():
        gates.setdefault(gate_id, GateMetrics()).breaker_state = GAUGE.get(rec.state, 0)
    snap.gates = dict(sorted(gates.items()))

    units: dict[str, int] = {}
    for part in (states.get("units") or {}).values():
        for u in part.units.values():
            units[u.display_state] = units.get(u.display_state, 0) + 1
    snap.units_by_state = dict(sorted(units.items()))

    turns: dict[str, int] = {}
    for part in (states.get("turns") or {}).values():
        snap.turns_started += part.started
        snap.turns_in_flight += len(part.in_flight)
        for status, n in part.finished.items():
            turns[status] = turns.get(status, 0) + n
    snap.turns_by_status = dict(sorted(turns.items()))

    runs: dict[str, int] = {}
    for r in (states.get("runs") or {}).values():
        if r.entered_at is not None:
            runs[r.status] = runs.get(r.status, 0) + 1
    snap.runs_by_status = dict(sorted(runs.items()))

    usd: dict[str, float] = {}
    tokens: dict[str, tuple[int, int]] = {}
    for run in (states.get("costs") or {}).values():
        for model, m in run.by_model.items():
            usd[model] = usd.get(model, 0.0) + m.usd
            tin, tout = tokens.get(model, (0, 0))
            tokens[model] = (tin + m.input_tokens, tout + m.output_tokens)
    snap.cost_usd_by_model = dict(sorted(usd.items()))
    snap.tokens_by_model = dict(sorted(tokens.items()))

    inbox = states.get("inbox")
    if inbox is not None:
        snap.messages_total = inbox.total
        snap.messages_unread = sum(box.unread for box in inbox.agents.values())
        agents = set(inbox.agents)
        for a, b in inbox.pairs:
            agents.update((a, b))
        snap.message_agents = len(agents)
        snap.message_conversations = len(inbox.pairs)
    return snap
