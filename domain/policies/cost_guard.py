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
from uok.domain.policies.costs import CostTable, ModelCost, usd

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
    turn_cost: dict[str, float] = {}  # what each priced turn not finished yet has spent so far

    def apply(self, e: object) -> None:
        if isinstance(e, CostRecorded):
            self.entries.append(CostEntry(e.at, e.cost_usd))
            key = unit_key(e.plan_id, e.unit_id)
            self.by_unit[key] = self.by_unit.get(key, 0.0) + e.cost_usd
            models = self.turn_models.setdefault(e.turn_id, [])
            if e.model not in models:
                models.append(e.model)
            self.turn_cost[e.turn_id] = self.turn_cost.get(e.turn_id, 0.0) + e.cost_usd
        elif isinstance(e, TurnFinished):
            self.turn_cost.pop(e.turn_id, None)
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


UNIT_KEY_SEP = "\x1f"


def unit_key(plan_id: str, unit_id: str) -> str:
    return f"{plan_id}{UNIT_KEY_SEP}{unit_id}"


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
    """One ``CostRecorded`` per readable usage row (unreadable ones are the
    verdict's business: :func:`problems`). The price, first that applies:
    the cost the tool itself reported; a config override row; the price the
    shell recorded from genai-prices; the bundled table; else unpriced
    (cost 0, ``priced=False``). Cache tokens are priced at the recorded
    price's cache rates, or as input tokens by the tables (an over-estimate:
    the guard errs on the side of stopping)."""
    out = []
    for u in usage:
        if u.error:
            continue
        row = table.lookup(u.model) if u.model else None
        cost: float | None
        if u.cost_usd is not None:
            cost = u.cost_usd
        elif row is not None and row.id in table.overridden:
            cost = row.cost(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens, u.output_tokens)
        elif u.price is not None:
            cost = u.price.cost_usd
        elif row is not None:
            cost = row.cost(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens, u.output_tokens)
        else:
            cost = None
        name = row.id if row else (u.price.model_id if u.price else u.model)
        out.append(
            CostRecorded(
                run_id=run_id,
                at=at,
                turn_id=turn_id,
                unit_id=unit_id,
                plan_id=plan_id,
                model=name or "unknown",
                input_tokens=u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
                output_tokens=u.output_tokens,
                cost_usd=round(cost, 8) if cost is not None else 0.0,
                priced=cost is not None,
            )
        )
    return out


def problems(usage: tuple[ModelUsage, ...], rows: list[CostRecorded]) -> list[str]:
    """What the guard cannot judge: unreadable usage lines, models it cannot price."""
    out = [u.error for u in usage if u.error]
    unpriced = sorted({r.model for r in rows if not r.priced})
    if unpriced:
        out.append(
            f"no price for model {', '.join(repr(m) for m in unpriced)} (not in genai-prices nor the cost table; "
            "add it to [uok.cost_guard] table)"
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
        f"${alt.input_per_1k * 1000:g}/${alt.output_per_1k * 1000:g} per million tokens in/out)"
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
    turn_id: str = "",
) -> Verdict:
    """Judge a turn whose ``rows`` are already folded into ``ledger``."""
    turn_cost = sum(r.cost_usd for r in rows)
    if turn_id:
        turn_cost = ledger.turn_cost.get(turn_id, turn_cost)  # with what it reported while it ran
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
                f"unit {unit_id} has spent {usd(unit_cost)}, over the per-unit ceiling of {usd(settings.per_unit_usd)} "
                f"(this turn {usd(turn_cost)}, mostly {dearest}){hint}{note}"
            ),
        )
    if window_cost > settings.per_hour_usd:
        alt, hint = _suggest(table, dearest)
        return Verdict(
            ok=False,
            suggestion=alt,
            rationale=(
                f"spend in the last {window} is {usd(window_cost)}, over the ceiling of {usd(settings.per_hour_usd)} "
                f"(this turn {usd(turn_cost)}, mostly {dearest}){hint}{note}"
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
            f"this turn {usd(turn_cost)}; unit {usd(unit_cost)} of {usd(settings.per_unit_usd)}; "
            f"last {window} {usd(window_cost)} of {usd(settings.per_hour_usd)}{note}"
        ),
    )


def budget(
    ledger: CostLedger, settings: CostGuardSettings, *, plan_id: str, unit_id: str, now: datetime
) -> dict[str, float]:
    """What a unit may still spend before the guard stops it: told to the
    task (``UOK_BUDGET_USD``, the feedback file's ``budget``)."""
    window = ledger.spend_since(now - timedelta(seconds=settings.window_seconds))
    return {
        "unit_ceiling_usd": settings.per_unit_usd,
        "unit_spent_usd": round(ledger.unit_cost(plan_id, unit_id), 8),
        "unit_remaining_usd": round(settings.per_unit_usd - ledger.unit_cost(plan_id, unit_id), 8),
        "window_ceiling_usd": settings.per_hour_usd,
        "window_remaining_usd": round(settings.per_hour_usd - window, 8),
    }
