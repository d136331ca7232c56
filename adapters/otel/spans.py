"""A run's timeline as OpenTelemetry spans (SDK ``ReadableSpan`` objects,
ready for any span exporter).

Shape of a trace (one per run)::

    run <run id>                      uok.run.*, totals, gen_ai.usage.* of the run
    ├── turn <unit id>                one per turn; uok.turn.*, gen_ai.usage.*, uok.cost.usd
    │   ├── phase dispatch | unit | guard | finalize …   from the previous phase to this one
    │   ├── execute <unit id>         the unit's process: process.exit.code, gen_ai.usage.*
    │   │   ├── execute_tool <tool>   an agent task's tool call, from its call to its result
    │   │   │                         (gen_ai.tool.name, gen_ai.tool.call.id; docs/agents.md)
    │   │   └── (the task's own spans, through its TRACEPARENT)
    │   └── gate <gate id>            one per gate attempt: uok.gate.*
    └── …

Times are the log's own readings; ids come from :mod:`uok.adapters.otel.ids`;
attribute values are derived from events only. So the same log gives the
same spans, byte for byte once encoded. Usage follows the OpenTelemetry
GenAI semantic conventions (``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.request.model``); the price, for
which the conventions have no attribute yet, is ``uok.cost.usd``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from uok.adapters.otel.ids import span_id, trace_id
from uok.projections.timeline import Mark, RunTimeline, TurnDetail

from uok import __version__

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCOPE = InstrumentationScope("uok", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def ns(at: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond the log keeps."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def resource(tl: RunTimeline) -> Resource:
    return Resource(
        {
            "service.name": "uok",
            "service.version": __version__,
            "uok.plan.id": tl.plan_id,
        }
    )


class SpanBuilder:
    """Builds the spans of one run; one instance per run (shares its resource)."""

    def __init__(self, tl: RunTimeline):
        self.tl = tl
        self.run_id = tl.run_id
        self.trace = trace_id(tl.run_id)
        self.resource = resource(tl)

    def _ctx(self, *key: str) -> SpanContext:
        return SpanContext(self.trace, span_id(self.run_id, *key), is_remote=False, trace_flags=_SAMPLED)

    def _span(
        self,
        name: str,
        key: tuple[str, ...],
        parent: tuple[str, ...] | None,
        start: datetime,
        end: datetime,
        attributes: dict[str, Any],
        *,
        status: Status | None = None,
        events: list[SpanEvent] | None = None,
    ) -> ReadableSpan:
        return ReadableSpan(
            name=name,
            context=self._ctx(*key),
            parent=self._ctx(*parent) if parent is not None else None,
            resource=self.resource,
            attributes={k: v for k, v in attributes.items() if v is not None and v != ""},
            events=events or (),
            kind=SpanKind.INTERNAL,
            status=status or Status(StatusCode.UNSET),
            start_time=ns(start),
            end_time=ns(max(start, end)),
            instrumentation_scope=_SCOPE,
        )

    # -- the run -------------------------------------------------------------------
    def root(self, *, status: str | None = None, end: datetime | None = None) -> ReadableSpan:
        """The run's span; ``end``/``status`` default to the recorded exit (an
        open run ends at its latest event, with status ``open``)."""
        tl = self.tl
        start = tl.entered_at or tl.last_at or _EPOCH
        stop = end or tl.exited_at or tl.last_at or start
        status = status or tl.status
        turns = list(tl.turns.values())
        tokens_in = sum(t.tokens[0] for t in turns)
        tokens_out = sum(t.tokens[1] for t in turns)
        attrs: dict[str, Any] = {
            "uok.run.id": self.run_id,
            "uok.run.status": status,
            "uok.plan.id": tl.plan_id,
            "uok.run.workers": tl.workers,
            "uok.run.error": tl.error,
            "uok.turns": len(turns),
            "uok.turns.failed": sum(1 for t in turns if t.status in ("failed", "retry")),
            "process.pid": tl.pid or None,
            "host.name": tl.host,
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "uok.cost.usd": round(sum(t.cost_usd for t in turns), 6),
        }
        marks = [m for m in tl.marks if not m.turn_id or m.turn_id not in tl.turns]
        bad = status in ("error", "terminated", "recovered")
        return self._span(
            f"run {self.run_id}",
            ("run",),
            None,
            start,
            stop,
            attrs,
            status=Status(StatusCode.ERROR, tl.error or status) if bad else Status(StatusCode.OK),
            events=[_event(m) for m in marks],
        )

    # -- one turn ----------------------------------------------------------------------
    def turn(self, t: TurnDetail, *, end: datetime | None = None) -> list[ReadableSpan]:
        """The turn's span, then its phases, execution and gate attempts."""
        stop = t.finished_at or end or self.tl.last_at or t.started_at
        tokens_in, tokens_out = t.tokens
        models = sorted({c.model for c in t.costs} | {u.model for u in (t.execution.usage if t.execution else [])})
        if not t.costs and t.execution is not None:
            tokens_in = sum(u.input_tokens for u in t.execution.usage)
            tokens_out = sum(u.output_tokens for u in t.execution.usage)
        attrs: dict[str, Any] = {
            "uok.run.id": self.run_id,
            "uok.turn.id": t.turn_id,
            "uok.turn.iteration": t.iteration,
            "uok.turn.status": t.status,
            "uok.unit.id": t.unit_id,
            "uok.unit.type": t.unit_type,
            "uok.unit.attempt": t.attempt,
            "uok.failure_class": None if t.failure_class == "none" else t.failure_class,
            "error.type": t.failure_class if t.status in ("failed", "retry") else None,
        }
        if models:
            attrs.update(
                {
                    "gen_ai.usage.input_tokens": tokens_in,
                    "gen_ai.usage.output_tokens": tokens_out,
                    "gen_ai.request.model": models[0] if len(models) == 1 else None,
                    "uok.models": models if len(models) > 1 else None,
                    "uok.cost.usd": round(t.cost_usd, 6),
                }
            )
        failed = t.status in ("failed", "retry", "stopped")
        key = ("turn", t.turn_id)
        spans = [
            self._span(
                f"turn {t.unit_id}",
                key,
                ("run",),
                t.started_at,
                stop,
                attrs,
                status=Status(StatusCode.ERROR, t.error or t.status) if failed else Status(StatusCode.UNSET),
                events=[_event(m) for m in self.tl.marks if m.turn_id == t.turn_id],
            )
        ]
        previous = t.started_at
        for i, p in enumerate(t.phases):
            attrs = {"uok.phase": p.phase, "uok.phase.action": p.action}
            attrs.update({f"uok.phase.data.{k}": _scalar(v) for k, v in sorted(p.data.items())})
            spans.append(self._span(f"phase {p.phase}", ("phase", t.turn_id, str(i)), key, previous, p.at, attrs))
            previous = p.at
        x = t.execution
        if x is not None:
            usage_in = sum(u.input_tokens for u in x.usage)
            usage_out = sum(u.output_tokens for u in x.usage)
            x_models = sorted({u.model for u in x.usage})
            ok = x.exit_code == 0 and not x.timed_out
            spans.append(
                self._span(
                    f"execute {t.unit_id}",
                    ("execution", t.turn_id),
                    key,
                    x.at - timedelta(milliseconds=x.duration_ms),
                    x.at,
                    {
                        "process.exit.code": x.exit_code,
                        "uok.execution.timed_out": x.timed_out,
                        "uok.execution.error": x.error,
                        "error.type": None if ok else ("timeout" if x.timed_out else "exit_code"),
                        "gen_ai.usage.input_tokens": usage_in if x.usage else None,
                        "gen_ai.usage.output_tokens": usage_out if x.usage else None,
                        "gen_ai.request.model": x_models[0] if len(x_models) == 1 else None,
                    },
                    status=Status(StatusCode.UNSET) if ok else Status(StatusCode.ERROR, x.error or "exit code"),
                )
            )
        spans += self._tool_calls(t)
        for g in t.gates:
            passed = g.outcome in ("pass", "skip")
            spans.append(
                self._span(
                    f"gate {g.gate_id}",
                    ("gate", t.turn_id, g.gate_id, str(g.attempt)),
                    key,
                    g.at - timedelta(milliseconds=g.duration_ms),
                    g.at,
                    {
                        "uok.gate.id": g.gate_id,
                        "uok.gate.type": g.gate_type,
                        "uok.gate.attempt": g.attempt,
                        "uok.gate.max_attempts": g.max_attempts,
                        "uok.gate.outcome": g.outcome,
                        "uok.gate.rationale": g.rationale[:1000],
                        "uok.gate.short_circuited": g.short_circuited,
                        "uok.gate.findings": g.findings,
                        "uok.failure_class": None if g.failure_class in ("none", "") else g.failure_class,
                    },
                    status=Status(StatusCode.UNSET) if passed else Status(StatusCode.ERROR, g.rationale[:200]),
                )
            )
        return spans

    def _tool_calls(self, t: TurnDetail) -> list[ReadableSpan]:
        """An agent turn's tool calls, each from its call to its result (or to
        the turn's last step when no result came), under the execution span."""
        results = {s.tool_id: s for s in t.steps if s.kind == "tool_result" and s.tool_id}
        last = max((s.at for s in t.steps if s.at is not None), default=None)
        spans = []
        for call in t.steps:
            if call.kind != "tool_call" or call.at is None:
                continue
            result = results.get(call.tool_id)
            end = result.at if result is not None and result.at is not None else (last or call.at)
            failed = result is not None and result.is_error
            spans.append(
                self._span(
                    f"execute_tool {call.tool}",
                    ("tool", t.turn_id, str(call.seq)),
                    ("execution", t.turn_id),
                    call.at,
                    end,
                    {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": call.tool,
                        "gen_ai.tool.call.id": call.tool_id,
                        "uok.agent.step": call.seq,
                        "uok.agent.tool.args": call.args,
                        "uok.agent.tool.finished": result is not None,
                        "error.type": "tool_error" if failed else None,
                    },
                    status=Status(StatusCode.ERROR, (result.text if result else "")[:200]) if failed else None,
                )
            )
        return spans

    def all(self) -> list[ReadableSpan]:
        """Every span of the run: the root, then each turn with its children."""
        out = [self.root()]
        for t in self.tl.turns.values():
            out += self.turn(t)
        return out


def _event(m: Mark) -> SpanEvent:
    attrs = {"uok.mark.kind": m.kind, "uok.mark.label": m.label}
    if m.unit_id:
        attrs["uok.unit.id"] = m.unit_id
    if m.gate_id:
        attrs["uok.gate.id"] = m.gate_id
    return SpanEvent(f"uok.{m.kind}", attrs, timestamp=ns(m.at))


def _scalar(v: Any) -> Any:
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    import msgspec

    return msgspec.json.encode(v, order="sorted").decode()
