"""Eval results as a read model (behaviour §20): one
:class:`~uok.domain.eval.summary.EvalRun` per run that ``uok eval`` tagged
(``KernelEntered.flags["eval"]``), with its outcome, gate runs, retries,
cost and tokens folded from the run's own events. One part per run (the
runner folds parts by key, with no look at the state, so a run's later
events cannot tell whether it was tagged): an untagged run's part has no
``eval_id`` and every reader skips it. ``uok eval report`` summarises the
parts of one eval (:func:`uok.domain.eval.summary.summarise`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from uok.domain import events as ev
from uok.domain.eval.summary import EvalRun
from uok.projections.base import PartitionedProjection
from uok.projections.runs import exit_status


def eval_tag(flags: dict[str, Any]) -> dict[str, Any] | None:
    """The eval tag a run recorded, if it is one of an eval's runs."""
    tag = flags.get("eval")
    return tag if isinstance(tag, dict) and isinstance(tag.get("eval_id"), str) else None


class EvalsProjection(PartitionedProjection):
    name: ClassVar[str] = "evals"
    version: ClassVar[int] = 2  # 2: a part per run (untagged ones have no eval_id), run ids kept
    part_type: ClassVar[type] = EvalRun
    types: ClassVar[frozenset[str]] = frozenset(
        {"KernelEntered", "PlanCompiled", "KernelExited", "RunRecovered", "TurnStarted", "GateRun", "CostRecorded"}
    )

    def key(self, e):
        return e.recovered_run if type(e) is ev.RunRecovered else e.run_id

    def new_part(self, key: str) -> EvalRun:
        return EvalRun(run_id=key)

    def apply_part(self, r: EvalRun, position: int, e) -> EvalRun:
        t = type(e)
        if t is ev.KernelEntered:
            tag = eval_tag(e.flags) or {}
            r.eval_id, r.suite = str(tag.get("eval_id", "")), str(tag.get("suite", ""))
            r.case, r.variant = str(tag.get("case", "")), str(tag.get("variant", ""))
            rep = tag.get("repetition", 0)
            r.repetition = rep if isinstance(rep, int) else 0
            r.work_mode, r.model_mode = e.work_mode, e.model_mode
            r.entered_at, r.entered_position = e.at, position
        elif t is ev.PlanCompiled:
            r.plan_id = e.plan_id
        elif t is ev.KernelExited:
            r.status, r.exited_at = exit_status(e), e.at
            r.units_completed, r.units_failed = e.units_completed, e.units_failed
        elif t is ev.RunRecovered:
            r.status, r.exited_at = "recovered", e.at
        elif t is ev.TurnStarted:
            r.turns += 1
            r.retries += e.attempt > 1
        elif t is ev.GateRun:
            if e.outcome == "pass":
                r.gates_passed += 1
            elif e.outcome != "skip":
                r.gates_failed += 1
        else:  # CostRecorded
            r.cost_usd += e.cost_usd
            r.input_tokens += e.input_tokens
            r.output_tokens += e.output_tokens
        return r
