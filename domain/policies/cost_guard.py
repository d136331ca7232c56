"""The cost guard (behaviour §9): price what a turn reported, stop what overspends.

It needs no side effect, so it lives in the kernel's pure core and runs on
every turn that reports model usage (on by default: the upstream budget
guard was opt-in, and loops ran until the tokens were gone, behaviour §18).

* Each ``ModelUsage`` row of an ``ExecutionFinished`` becomes one
  ``CostRecorded`` (priced with :mod:`uok.domain.policies.costs`; an unknown model is
  recorded with ``priced=False`` and cost 0 rather than guessed).
* :class:`CostLedger` is a fold of ``CostRecorded`` (spend by unit, spend by
  time) and ``TurnFinished`` (which priced turns failed), so the hourly
  window and the failure history are facts of the log, not of a process.
* :func:`check` applies, in order: the per-unit ceiling (all attempts of a
  unit, across runs), the rolling-window ceiling (every turn in the last
  ``window_seconds``, this one included), and the high-tier failure
  pattern (this turn failed on a model costing >= $0.005 per 1K input and
  that model already has ``failure_threshold - 1`` failed turns in the
  window). A violation names a cheaper model of the same provider whose
  context window is at least as large.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from uok.domain.config import CostGuardSettings
from uok.domain.events import CostRecorded, ModelUsage, TurnFinished
from uok.domain.policies.costs import CostTable, ModelCost

GATE_ID = "cost-guard"
GATE_TYPE = "cost"
FAILED_TURN = frozenset({"failed", "retry"})


class CostEntry(msgspec.Struct, frozen=True):
    at: datetime
    cost_usd: float


class FailureEntry(msgspec.Struct, frozen=True):
    at: datetime
    model: str


class CostLedger(msgspec.Struct, kw_only=True):
    entries: list[CostEntry] = []
    by_unit: dict[str, float] = {}
    turn_models: dict[str, list[str]] = {}  # priced turns not finished yet
    failures: list[FailureEntry] = []

    def apply(self, e: object) -> None:
        if isinstance(e, CostRecorded):
            self.entries.append(CostEntry(e.at, e.cost_usd))
            key = unit_key(e.plan_id, e.unit_id)
            self.by_unit[key] = self.by_unit.get(key, 0.0) + e.cost_usd
            models = self.turn_models.setdefault(e.turn_id, [])
            if e.model not in models:
                models.append(e.model)
        elif isinstance(e, TurnFinished):
            models = self.turn_models.pop(e.turn_id, [])
            if models and e.status in FAILED_TURN:
                self.failures.extend(FailureEntry(e.at, m) for m in models)

    def unit_cost(self, plan_id: str, unit_id: str) -> float:
        return self.by_unit.get(unit_key(plan_id, unit_id), 0.0)

    def spend_since(self, since: datetime, slack: timedelta = timedelta(hours=1)) -> float:
        """Spend recorded after ``since``. Scans from the newest entry and
        stops ``slack`` before ``since`` (entries of concurrent runs may be
        slightly out of time order; never by that much)."""
        total = 0.0
        stop = since - slack
        for entry in reversed(self.entries):
            if entry.at < stop:
                break
            if entry.at > since:
                total += entry.cost_usd
        return total

    def failures_since(self, model: str, since: datetime) -> int:
        return sum(1 for f in self.failures if f.model == model and f.at > since)


def unit_key(plan_id: str, unit_id: str) -> str:
    return f"{plan_id}\x1f{unit_id}"


def price(
    table: CostTable,
    usage: tuple[ModelUsage, ...],
    *,
    run_id: str,
    at: datetime,
    turn_id: str,
    unit_id: str,
    plan_id: str,
) -> list[CostRecorded]:
    """One ``CostRecorded`` per usage row (model ids canonicalised when known)."""
    out = []
    for u in usage:
        row = table.lookup(u.model)
        out.append(
            CostRecorded(
                run_id=run_id,
                at=at,
                turn_id=turn_id,
                unit_id=unit_id,
                plan_id=plan_id,
                model=row.id if row else u.model,
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cost_usd=round(row.cost(u.input_tokens, u.output_tokens), 8) if row else 0.0,
                priced=row is not None,
            )
        )
    return out


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    rationale: str
    suggestion: str = ""


def _suggest(table: CostTable, model: str) -> tuple[str, str]:
    alt: ModelCost | None = table.cheaper_alternative(model)
    if alt is None:
        return "", "; no cheaper model of the same provider with a context window as large is known"
    return alt.id, (
        f"; consider {alt.id} ({alt.provider}, {alt.context_window}-token context, "
        f"${alt.input_per_1k:g}/${alt.output_per_1k:g} per 1K in/out)"
    )


def check(
    ledger: CostLedger,
    table: CostTable,
    settings: CostGuardSettings,
    rows: list[CostRecorded],
    *,
    plan_id: str,
    unit_id: str,
    now: datetime,
    turn_failed: bool,
) -> Verdict:
    """Judge a turn whose ``rows`` are already folded into ``ledger``."""
    turn_cost = sum(r.cost_usd for r in rows)
    priced = [r for r in rows if r.priced]
    dearest = max(priced, key=lambda r: (r.cost_usd, r.model)).model if priced else (rows[0].model if rows else "")
    unpriced = sorted({r.model for r in rows if not r.priced})
    note = f"; unpriced (not in the cost table): {', '.join(unpriced)}" if unpriced else ""
    unit_cost = ledger.unit_cost(plan_id, unit_id)
    since = now - timedelta(seconds=settings.window_seconds)
    window_cost = ledger.spend_since(since)
    window = (
        f"{settings.window_seconds / 3600:g} h"
        if settings.window_seconds % 360 == 0
        else f"{settings.window_seconds:g} s"
    )

    if unit_cost > settings.per_unit_usd:
        alt, hint = _suggest(table, dearest)
        return Verdict(
            ok=False,
            suggestion=alt,
            rationale=(
                f"unit {unit_id} has spent ${unit_cost:.4f}, over the per-unit ceiling of ${settings.per_unit_usd:.2f} "
                f"(this turn ${turn_cost:.4f}, mostly {dearest}){hint}{note}"
            ),
        )
    if window_cost > settings.per_hour_usd:
        alt, hint = _suggest(table, dearest)
        return Verdict(
            ok=False,
            suggestion=alt,
            rationale=(
                f"spend in the last {window} is ${window_cost:.4f}, over the ceiling of ${settings.per_hour_usd:.2f} "
                f"(this turn ${turn_cost:.4f}, mostly {dearest}){hint}{note}"
            ),
        )
    if turn_failed:
        for model in sorted({r.model for r in priced}):
            if not table.is_high_tier(model, settings.high_tier_input_per_1k):
                continue
            count = ledger.failures_since(model, since) + 1
            if count >= settings.failure_threshold:
                alt, hint = _suggest(table, model)
                return Verdict(
                    ok=False,
                    suggestion=alt,
                    rationale=(
                        f"{count} failed turns on high-tier model {model} in the last {window} "
                        f"(threshold {settings.failure_threshold}){hint}{note}"
                    ),
                )
    return Verdict(
        ok=True,
        rationale=(
            f"this turn ${turn_cost:.4f}; unit ${unit_cost:.4f} of ${settings.per_unit_usd:.2f}; "
            f"last {window} ${window_cost:.4f} of ${settings.per_hour_usd:.2f}{note}"
        ),
    )
