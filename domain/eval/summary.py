"""What an eval's recorded runs say about its variants (behaviour §20).

:class:`EvalRun` is one run of one cell, as the ``evals`` read model folds
it from the log; :func:`summarise` turns the runs of one eval into one
:class:`VariantSummary` per variant, ranked; :func:`compare` says, metric by
metric, whether two variants (or one variant in two evals: two code
versions) differ significantly. The same definitions are the SQL views
``eval_runs`` and ``eval_variants`` (``docs/schema.md``), and a test checks
that both give the same numbers over the same log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec
from uok.domain.eval.stats import Interval, fisher_exact, mean_interval, quantile, welch, wilson

SIGNIFICANCE = 0.05  # a difference is called significant below this p-value


class EvalRun(msgspec.Struct, kw_only=True, gc=False):
    """One tagged run: its cell, its outcome and what it cost."""

    run_id: str = ""
    eval_id: str = ""
    suite: str = ""
    case: str = ""
    variant: str = ""
    repetition: int = 0
    plan_id: str = ""
    work_mode: str = ""
    model_mode: str = ""
    status: str = "open"  # the runs read model's: ok | failed | error | terminated | recovered | open
    units_completed: int = 0
    units_failed: int = 0
    gates_passed: int = 0
    gates_failed: int = 0  # gate runs that did not pass (skips are neither)
    turns: int = 0
    retries: int = 0  # turns that were a unit's second or later attempt
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    entered_at: datetime | None = None
    exited_at: datetime | None = None
    entered_position: int = 0

    @property
    def passed(self) -> bool:
        """Every unit completed, its gates passed: the run ended ``ok``."""
        return self.status == "ok"

    @property
    def finished(self) -> bool:
        return self.status != "open"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def duration_ms(self) -> float:
        """Entry to exit, from the recorded clock readings (microsecond exact)."""
        if self.entered_at is None or self.exited_at is None:
            return 0.0
        delta = self.exited_at - self.entered_at
        return (delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds) / 1000.0


class VariantSummary(msgspec.Struct, kw_only=True):
    variant: str
    rank: int = 0
    runs: int
    passes: int
    pass_rate: Interval
    units_completed: int
    units_failed: int
    gate_pass_rate: Interval
    cost_usd: Interval
    tokens: Interval
    duration_p50_ms: float
    duration_p95_ms: float
    duration_ms: Interval
    retries: Interval
    cases: int


def summarise_variant(variant: str, runs: Sequence[EvalRun]) -> VariantSummary:
    """The finished runs of one variant (an open run has no outcome yet)."""
    done = [r for r in runs if r.finished]
    durations = [r.duration_ms for r in done]
    gates_passed = sum(r.gates_passed for r in done)
    gates_total = gates_passed + sum(r.gates_failed for r in done)
    return VariantSummary(
        variant=variant,
        runs=len(done),
        passes=sum(r.passed for r in done),
        pass_rate=wilson(sum(r.passed for r in done), len(done)),
        units_completed=sum(r.units_completed for r in done),
        units_failed=sum(r.units_failed for r in done),
        gate_pass_rate=wilson(gates_passed, gates_total),
        cost_usd=mean_interval([r.cost_usd for r in done]),
        tokens=mean_interval([float(r.tokens) for r in done]),
        duration_p50_ms=quantile(durations, 0.5),
        duration_p95_ms=quantile(durations, 0.95),
        duration_ms=mean_interval(durations),
        retries=mean_interval([float(r.retries) for r in done]),
        cases=len({r.case for r in done}),
    )


def by_variant(runs: Iterable[EvalRun]) -> dict[str, list[EvalRun]]:
    out: dict[str, list[EvalRun]] = {}
    for r in sorted(runs, key=lambda r: r.entered_position):
        out.setdefault(r.variant, []).append(r)
    return out


def summarise(runs: Iterable[EvalRun]) -> list[VariantSummary]:
    """One summary per variant, ranked: the higher pass rate first, then
    the lower mean cost, then the lower median duration, then the name."""
    summaries = [summarise_variant(v, rs) for v, rs in by_variant(runs).items()]
    summaries.sort(key=lambda s: (-s.pass_rate.estimate, s.cost_usd.estimate, s.duration_p50_ms, s.variant))
    for i, s in enumerate(summaries, 1):
        s.rank = i
    return summaries


class Difference(msgspec.Struct, kw_only=True):
    metric: str
    a: float
    b: float
    p_value: float
    test: str  # fisher | welch

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


def compare(a: Sequence[EvalRun], b: Sequence[EvalRun]) -> list[Difference]:
    """Metric by metric, ``a`` against ``b`` (finished runs only): Fisher's
    exact test for the pass rate, Welch's t-test for the means."""
    a = [r for r in a if r.finished]
    b = [r for r in b if r.finished]
    ap, bp = sum(r.passed for r in a), sum(r.passed for r in b)
    out = [
        Difference(
            metric="pass_rate",
            a=wilson(ap, len(a)).estimate,
            b=wilson(bp, len(b)).estimate,
            p_value=fisher_exact(ap, len(a), bp, len(b)),
            test="fisher",
        )
    ]
    for metric, get in (
        ("cost_usd", lambda r: r.cost_usd),
        ("tokens", lambda r: float(r.tokens)),
        ("duration_ms", lambda r: r.duration_ms),
        ("retries", lambda r: float(r.retries)),
    ):
        xa, xb = [get(r) for r in a], [get(r) for r in b]
        out.append(
            Difference(
                metric=metric,
                a=mean_interval(xa).estimate,
                b=mean_interval(xb).estimate,
                p_value=welch(xa, xb),
                test="welch",
            )
        )
    return out
