"""Evals, the pure part (behaviour §20): the statistics against published
values, the suite's validation, and how a cell of the matrix becomes a plan."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from uok.domain.eval import stats
from uok.domain.eval.suite import SuiteError, case_document, cell_document, parse_suite, to_toml
from uok.domain.eval.summary import EvalRun, compare, summarise
from uok.domain.plan import compile_plan

# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    ("df", "t975"),
    # Student's t, 0.975 quantile (any printed table, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
    [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (14, 2.145), (29, 2.045), (100, 1.984)],
)
def test_t_quantiles_match_the_table(df, t975):
    assert stats.t_ppf(0.975, df) == pytest.approx(t975, abs=5e-4)
    assert stats.t_sf(stats.t_ppf(0.975, df), df) == pytest.approx(0.025, abs=1e-9)
    assert stats.t_ppf(0.025, df) == pytest.approx(-t975, abs=5e-4)


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 .. 0.3662
    est, low, high = stats.wilson(81, 263)
    assert est == pytest.approx(81 / 263)
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    # 15 of 15 and 0 of 15 stay inside [0, 1] and are not degenerate
    assert stats.wilson(15, 15).high == 1.0 and stats.wilson(15, 15).low == pytest.approx(0.7961, abs=1e-4)
    assert stats.wilson(0, 15).low == 0.0 and 0.1 < stats.wilson(0, 15).high < 0.3
    assert stats.wilson(0, 0) == (0.0, 0.0, 1.0)


def test_fisher_exact_matches_the_textbook_tea_tasting_and_a_known_table():
    assert stats.fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857, abs=1e-4)  # Fisher's lady tasting tea
    assert stats.fisher_exact(8, 10, 1, 6) == pytest.approx(0.034965, abs=1e-6)
    assert stats.fisher_exact(5, 5, 5, 5) == 1.0


def test_welch_and_the_mean_interval():
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10]
    assert stats.welch(a, b) == pytest.approx(0.1075, abs=1e-3)  # t = -1.897, df = 5.88
    assert stats.welch(a, a) == pytest.approx(1.0)
    assert stats.welch([1, 1], [2, 2]) == 0.0 and stats.welch([1], [5, 6]) == 1.0
    m, _low, high = stats.mean_interval([2.0, 4.0, 6.0])
    assert m == 4.0 and high - m == pytest.approx(4.303 * 2 / math.sqrt(3), abs=1e-3)
    assert stats.mean_interval([3.0]) == (3.0, -math.inf, math.inf)


def test_quantile_is_linear_interpolation_as_duckdb_quantile_cont():
    values = [10, 1, 7, 3]
    assert stats.quantile(values, 0.5) == 5.0
    assert stats.quantile(values, 0.95) == pytest.approx(7 + 0.85 * 3)
    assert stats.quantile([4], 0.95) == 4 and stats.quantile([], 0.5) == 0.0


# ------------------------------------------------------------------ summary


def _run(variant: str, status: str, cost: float, ms: int, rep: int) -> EvalRun:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    return EvalRun(
        run_id=f"{variant}{rep}",
        eval_id="e1",
        variant=variant,
        case="c",
        repetition=rep,
        status=status,
        cost_usd=cost,
        entered_at=at,
        exited_at=at + timedelta(milliseconds=ms),
        entered_position=rep,
    )


def test_summarise_ranks_by_pass_rate_then_cost_and_ignores_open_runs():
    runs = [_run("a", "ok" if i % 2 else "failed", 1.0, 100 + i, i) for i in range(10)]
    runs += [_run("b", "ok", 2.0, 200, i) for i in range(10)]
    runs += [_run("c", "ok", 1.0, 300, i) for i in range(10)] + [_run("c", "open", 0.0, 0, 99)]
    ranked = summarise(runs)
    assert [(s.variant, s.rank) for s in ranked] == [("c", 1), ("b", 2), ("a", 3)]
    assert ranked[0].runs == 10 and ranked[2].passes == 5
    assert ranked[2].duration_p50_ms == pytest.approx(104.5)
    diffs = {d.metric: d for d in compare([r for r in runs if r.variant == "a"], [r for r in runs if r.variant == "c"])}
    assert diffs["pass_rate"].significant and diffs["duration_ms"].significant and not diffs["cost_usd"].significant


# ------------------------------------------------------------------ suite


SUITE = {
    "suite": {"id": "s", "repetitions": 3},
    "cases": [{"id": "fix", "task": {"command": ["sh", "a.sh"], "env": {"A": "1"}}}],
    "variants": [{"id": "v1", "model": "m1", "task": {"timeout": 5, "env": {"B": "2"}}}, {"id": "v2"}],
}


def test_a_cell_is_the_case_plan_with_the_variant_applied_and_compiles():
    suite = parse_suite(SUITE, "suite.toml")
    doc = cell_document(case_document(suite.cases[0]), suite.variants[0], plan_id="fix.e1.v1.r1", tags={"T": "x"})
    graph = compile_plan(to_toml(doc), filename="suite.toml")
    [node] = [n for n in graph.nodes if n.id == "fix"]
    assert graph.plan_id == "fix.e1.v1.r1" and node.timeout == 5
    assert dict(node.env) == {"A": "1", "B": "2", "UOK_MODEL": "m1", "T": "x"}  # env merged, the rest replaced


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"suite": {"id": "s", "repetitions": 0}}, "repetitions must be 1..1000"),
        ({"variants": []}, "at least one [[variants]]"),
        ({"variants": [{"id": "v"}, {"id": "v"}]}, "duplicate variant id 'v'"),
        ({"cases": [{"id": "c"}]}, "exactly one of plan"),
        ({"cases": [{"id": "c bad", "task": {}}]}, "case id 'c bad' must match"),
        ({"variants": [{"id": "v", "colour": "red"}]}, "unknown field `colour`"),
        ({"variants": [{"id": "v", "task": {"id": "x"}}]}, "task.id cannot be overridden"),
    ],
)
def test_a_bad_suite_is_refused_naming_the_problem(change, message):
    with pytest.raises(SuiteError, match=r"^suite\.toml: ") as info:
        parse_suite({**SUITE, **change}, "suite.toml")
    assert message in str(info.value)


_scalar = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=12))
_values = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=4))
def test_to_toml_round_trips_through_tomllib(doc):
    assert tomllib.loads(to_toml(doc)) == doc


def test_mode_change_arguments_and_routing():
    from uok.domain.policies.modes import ModeError, parse_mode_change, route_model

    assert parse_mode_change("fast") == {"model_mode": "fast"}
    assert parse_mode_change("work_mode=fix model_mode=deep") == {"work_mode": "fix", "model_mode": "deep"}
    for bad in ("", "colour=red", "model_mode=", "a b"):
        with pytest.raises(ModeError):
            parse_mode_change(bad)
    assert route_model("fast", {"fast": "claude-haiku-4-5"}) == "claude-haiku-4-5"
    assert route_model("deep", {"fast": "claude-haiku-4-5"}) == ""
