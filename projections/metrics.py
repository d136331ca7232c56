"""Metrics (behaviour §15) as a fold of the log, plus the snapshot that combines
it with the other read models.

Most of what ``/metrics`` reports is already folded by a projection:
gate outcomes (``gates``), breakers (``breakers``, the kernel's own fold),
units (``units``), turns (``turns``), runs (``runs``), costs (``costs``),
the message bus (``inbox``). What none of them keeps is how long things
took, so :class:`MetricsProjection` folds exactly that, as duration
*distributions*:

* per gate, its executed attempts (``GateRun`` not short-circuited);
* per turn status, each turn from its start to its ``TurnFinished``;
* per execution outcome, each unit process (``ExecutionFinished``).

Each distribution is a fixed set of bucket counts (:data:`BOUNDS_MS`), so
Prometheus gets real histograms whatever the log's length and the state
never grows. Gates also keep how many attempts took each number of
milliseconds, from which p50/p95 are exact (nearest rank) and
deterministic, unlike a sampled reservoir (``uok metrics --json``, the UI).

:func:`snapshot` is pure: projection states in, plain numbers out. It
serves the live endpoint and ``uok metrics --at P`` alike; only the
positions the states were folded to differ.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, ClassVar

import msgspec
from uok.domain import events as ev
from uok.domain.events import Event
from uok.projections.base import PartitionedProjection

GAUGE = {"closed": 0, "half-open": 1, "open": 2}
SOURCES = ("metrics", "gates", "breakers", "units", "turns", "runs", "costs", "inbox", "counters", "evals")
"""The projections a snapshot is made of (by registry name)."""

BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
)
"""Histogram bucket upper bounds in milliseconds (inclusive, as Prometheus'
``le``), from a fast gate (5 ms) to an hour-long unit; +Inf follows."""

GATE, TURN, EXECUTION = "gate", "turn", "execution"
"""The kinds of distribution; a part's key is ``kind:label``."""


class Durations(msgspec.Struct, kw_only=True, gc=False):
    """One duration distribution: per-bucket counts (not cumulative; one per
    bound of :data:`BOUNDS_MS`, then +Inf), their sum and count. ``counts``
    (duration in ms -> how many) is kept for gates only, for exact quantiles."""

    buckets: list[int] = []
    total_ms: int = 0
    n: int = 0
    counts: dict[int, int] = {}

    def add(self, ms: int, *, exact: bool = False) -> None:
        if not self.buckets:
            self.buckets = [0] * (len(BOUNDS_MS) + 1)
        self.buckets[bisect.bisect_left(BOUNDS_MS, ms)] += 1
        self.total_ms += ms
        self.n += 1
        if exact:
            self.counts[ms] = self.counts.get(ms, 0) + 1


def execution_outcome(e: ev.ExecutionFinished) -> str:
    """``ok`` (exit 0), ``failed`` (another exit code), ``timeout``, or
    ``error`` (the process could not be started or was lost)."""
    if e.timed_out:
        return "timeout"
    if e.exit_code is None:
        return "error"
    return "ok" if e.exit_code == 0 else "failed"


def turn_ms(e: ev.TurnFinished) -> int | None:
    if e.started_at is None:
        return None
    return max(0, round((e.at - e.started_at).total_seconds() * 1000))


class MetricsProjection(PartitionedProjection):
    """Duration distributions of gate attempts, turns and executions
    (short-circuited gate attempts did not execute and are left out)."""

    name: ClassVar[str] = "metrics"
    version: ClassVar[int] = 2  # 2: bucketed turn/execution/gate durations (1: gate latencies only)
    part_type: ClassVar[type] = Durations
    types: ClassVar[frozenset[str]] = frozenset({"GateRun", "TurnFinished", "ExecutionFinished"})
    # deltas (~19 MB per 1M events, the gates' exact counts) keep a state query within 1,000 events of
    # a snapshot: without them, every query of all read models folded up to 10,000 (issue 15)
    delta_snapshots: ClassVar[bool] = True

    def key(self, event: Event) -> str | None:
        t = type(event)
        if t is ev.TurnFinished:
            return None if event.started_at is None else f"{TURN}:{event.status}"  # type: ignore[attr-defined]
        if t is ev.ExecutionFinished:
            return f"{EXECUTION}:{execution_outcome(event)}"  # type: ignore[arg-type]
        return None if event.short_circuited else f"{GATE}:{event.gate_id}"  # type: ignore[attr-defined]

    def apply_part(self, part: Durations, position: int, e) -> Durations:
        t = type(e)
        if t is ev.TurnFinished:
            part.add(turn_ms(e) or 0)
        elif t is ev.ExecutionFinished:
            part.add(max(0, int(e.duration_ms)))
        else:
            part.add(max(0, int(e.duration_ms)), exact=True)
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


class Histogram(msgspec.Struct, kw_only=True):
    """A Prometheus histogram: ``cumulative[i]`` observations took at most
    ``BOUNDS_MS[i]`` ms; the last entry (+Inf) equals ``count``."""

    cumulative: list[int]
    sum_seconds: float
    count: int


def histogram(d: Durations) -> Histogram:
    buckets = d.buckets or [0] * (len(BOUNDS_MS) + 1)
    running, cumulative = 0, []
    for c in buckets:
        running += c
        cumulative.append(running)
    return Histogram(cumulative=cumulative, sum_seconds=d.total_ms / 1000, count=d.n)


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
    mode_transitions: int = 0  # ModeChanged decisions (uok steer RUN mode ...)
    subagents_spawned: dict[str, int] = {}  # by model mode (SubagentSpawned)
    intent_waits: int = 0  # UnitWaiting decisions: a unit held by another's read/write intents
    eval_runs: dict[str, dict[str, dict[str, int]]] = {}  # suite -> variant -> passed|failed|open -> runs
    gate_run_seconds: dict[str, Histogram] = {}  # by gate id (executed attempts)
    turn_seconds: dict[str, Histogram] = {}  # by turn status
    execution_seconds: dict[str, Histogram] = {}  # by execution outcome (see execution_outcome)


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
    durations: dict[str, dict[str, Histogram]] = {GATE: {}, TURN: {}, EXECUTION: {}}
    for key, d in sorted((states.get("metrics") or {}).items()):
        kind, _, label = key.partition(":")
        if kind not in durations:
            continue
        durations[kind][label] = histogram(d)
        if kind != GATE:
            continue
        g = gates.setdefault(label, GateMetrics())
        g.latency_count = d.n
        if d.n:
            g.latency_avg = d.total_ms / d.n
            g.latency_p50 = quantile(d.counts, d.n, 0.50)
            g.latency_p95 = quantile(d.counts, d.n, 0.95)
            g.latency_max = float(max(d.counts))
    snap.gate_run_seconds, snap.turn_seconds = durations[GATE], durations[TURN]
    snap.execution_seconds = durations[EXECUTION]
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
        snap.mode_transitions += r.mode_changes
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

    for key, count in sorted((states.get("counters") or {}).items()):
        name, _, label = key.partition(":")
        if name == "subagents_spawned":
            snap.subagents_spawned[label] = count.n
        elif name == "intent_waits":
            snap.intent_waits += count.n
    for r in (states.get("evals") or {}).values():
        if not r.eval_id:  # a run uok eval did not start
            continue
        outcome = "open" if not r.finished else "passed" if r.passed else "failed"
        by = snap.eval_runs.setdefault(r.suite, {}).setdefault(r.variant, {})
        by[outcome] = by.get(outcome, 0) + 1

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
