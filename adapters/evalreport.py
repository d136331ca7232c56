"""``uok eval report``: an eval's variants ranked, with confidence
intervals, and the comparisons that say which differences are significant
(behaviour §20). Built from the ``evals`` read model through the pure
summary (:mod:`uok.domain.eval.summary`); rendered as text or one JSON object.
"""

from __future__ import annotations

import math
from typing import Any

from uok.domain.eval.stats import Interval
from uok.domain.eval.summary import Difference, EvalRun, VariantSummary, by_variant, compare, summarise


def _interval(i: Interval) -> dict[str, float | None]:
    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {"estimate": i.estimate, "low": finite(i.low), "high": finite(i.high)}


def summary_json(s: VariantSummary) -> dict[str, Any]:
    return {
        "variant": s.variant,
        "rank": s.rank,
        "runs": s.runs,
        "passes": s.passes,
        "pass_rate": _interval(s.pass_rate),
        "units_completed": s.units_completed,
        "units_failed": s.units_failed,
        "gate_pass_rate": _interval(s.gate_pass_rate),
        "cost_usd": _interval(s.cost_usd),
        "tokens": _interval(s.tokens),
        "duration_ms": _interval(s.duration_ms),
        "duration_p50_ms": s.duration_p50_ms,
        "duration_p95_ms": s.duration_p95_ms,
        "retries": _interval(s.retries),
        "cases": s.cases,
    }


def difference_json(a: str, b: str, d: Difference) -> dict[str, Any]:
    return {
        "a": a,
        "b": b,
        "metric": d.metric,
        "a_value": d.a,
        "b_value": d.b,
        "p_value": d.p_value,
        "test": d.test,
        "significant": d.significant,
    }


class Comparison:
    """Pairs of run sets compared metric by metric: (label a, label b, differences)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str, list[Difference]]] = []

    def add(self, a: str, runs_a: list[EvalRun], b: str, runs_b: list[EvalRun]) -> None:
        self.pairs.append((a, b, compare(runs_a, runs_b)))


def report(
    eval_id: str,
    runs: list[EvalRun],
    *,
    baseline: str | None = None,
    other: tuple[str, list[EvalRun]] | None = None,
) -> dict[str, Any]:
    """The report of one eval. Without a baseline, every variant is compared
    with the best-ranked one; ``baseline``: with that variant instead;
    ``other`` (label, runs of another eval: another code version), each
    variant with the same variant there."""
    summaries = summarise(runs)
    groups = by_variant(runs)
    cmp = Comparison()
    if other is not None:
        label, other_runs = other
        theirs = by_variant(other_runs)
        for s in summaries:
            if s.variant in theirs:
                cmp.add(f"{s.variant}@{eval_id}", groups[s.variant], f"{s.variant}@{label}", theirs[s.variant])
    elif summaries:
        base = baseline or summaries[0].variant
        for s in summaries:
            if s.variant != base:
                cmp.add(s.variant, groups[s.variant], base, groups[base])
    first = runs[0] if runs else None
    return {
        "eval_id": eval_id,
        "suite": first.suite if first else "",
        "runs": sum(s.runs for s in summaries),
        "cases": len({r.case for r in runs}),
        "variants": [summary_json(s) for s in summaries],
        "other": [summary_json(s) for s in summarise(other[1])] if other is not None else [],
        "comparisons": [difference_json(a, b, d) for a, b, ds in cmp.pairs for d in ds],
    }


def _ci(i: dict[str, Any], fmt: str) -> str:
    lo, hi = i["low"], i["high"]
    if lo is None or hi is None:
        return f"{i['estimate']:{fmt}}"
    return f"{i['estimate']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def render(rep: dict[str, Any]) -> str:
    lines = [
        (
            f"eval {rep['eval_id']} (suite {rep['suite']}): {len(rep['variants'])} variants, "
            f"{rep['cases']} cases, {rep['runs']} finished runs; 95% intervals (Wilson for rates, t for means)"
        )
    ]
    header = (
        f"{'rank':<5}{'variant':<16}{'runs':>5}  {'pass rate':<24}{'cost/run $':<30}"
        f"{'tokens/run':<26}{'p50 ms':>9}{'p95 ms':>9}  retries/run"
    )
    for title, rows in (("", rep["variants"]), (" (--against)", rep["other"])):
        if not rows:
            continue
        if title:
            lines.append(f"\nagainst{title.removeprefix(' (--against)')}:")
        lines.append(header)
        for v in rows:
            lines.append(
                f"{v['rank']:<5}{v['variant']:<16}{v['runs']:>5}  {_ci(v['pass_rate'], '.3f'):<24}"
                f"{_ci(v['cost_usd'], '.4f'):<30}{_ci(v['tokens'], '.0f'):<26}"
                f"{v['duration_p50_ms']:>9.0f}{v['duration_p95_ms']:>9.0f}  {_ci(v['retries'], '.2f')}"
            )
    if rep["comparisons"]:
        lines.append("")
    for c in rep["comparisons"]:
        verdict = "SIGNIFICANT" if c["significant"] else "not significant"
        lines.append(
            f"{c['a']} vs {c['b']}: {c['metric']} {c['a_value']:.4g} vs {c['b_value']:.4g}, "
            f"p={c['p_value']:.3g} ({c['test']}): {verdict}"
        )
    return "\n".join(lines)
