"""Clarify rounds (behaviour §11): the limit policy and the plan key."""

from __future__ import annotations

import pytest
from uok.domain.plan import PlanError, compile_plan
from uok.domain.policies.clarify import CLARIFY_ROUND_LIMIT, refusal

PLAN = '[plan]\nid = "p"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n[[milestones.slices.tasks]]\nid = "t"\n'


def test_the_seeds_limit_is_three_and_the_fourth_round_is_refused():
    assert CLARIFY_ROUND_LIMIT == 3
    assert [refusal(asked, 3) for asked in (0, 1, 2)] == [None, None, None]
    assert refusal(3, 3) == "clarify round limit reached: 3 of 3 rounds used (limit 3)"


@pytest.mark.parametrize(("value", "rounds"), [("true", 3), ("1", 1), ("5", 5), ("false", 0)])
def test_clarify_sets_the_units_rounds(value: str, rounds: int):
    assert compile_plan(PLAN + f"clarify = {value}\n", filename="p.toml").node("t").clarify_rounds == rounds
    assert compile_plan(PLAN, filename="p.toml").node("t").clarify_rounds == 0


@pytest.mark.parametrize("value", ["0", "-1", '"3"', "2.5"])
def test_bad_clarify_values_are_refused(value: str):
    with pytest.raises(PlanError, match="clarify must be true or a number of rounds >= 1"):
        compile_plan(PLAN + f"clarify = {value}\n", filename="p.toml")
