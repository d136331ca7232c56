"""The flags a run recorded, typed once at the kernel's boundary.

``KernelEntered.flags`` stays a recorded mapping (so every log ever
written still decodes): the resolved settings under ``"uok"`` (with the
rows of a cost table override in ``cost_guard.table_rows``), the gates the
shell registered under ``"gates"``, and the run's own switches. The kernel
turns it into :class:`RunFlags` when it handles the ``KernelEntered``, and
reads nothing else.

Logs written before the schema was typed recorded sections that no longer
exist (``metrics``, ``message_bus``, ``model_policy``, ``execution_graph``,
``audit_unified``, ``plan_v2``), pass-through ``options`` tables, and
``gitops.turn_push``. None of them ever changed a decision, so
:func:`recorded_settings` drops them before converting: old logs replay
with the decisions they recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from uok.domain.config.parse import ConfigError
from uok.domain.config.schema import ChaosSettings, Settings
from uok.domain.events.requeue import RetryRequest
from uok.domain.events.runs import dense_turns

MAX_ITERATIONS = 500  # turns in one run before it is stopped as a possible runaway (behaviour §1)
TURNS_PER_UNIT = 10  # what new runs record: the ceiling grows with the plan (uok.domain.kernel.rules.dispatch)
RETIRED_SECTIONS = ("metrics", "message_bus", "model_policy", "execution_graph", "audit_unified", "plan_v2")


class RunFlags(msgspec.Struct, kw_only=True, frozen=True):
    """What the kernel reads from ``KernelEntered.flags``."""

    settings: Settings = msgspec.field(default_factory=Settings)  # flags["uok"]
    cost_rows: tuple[dict[str, Any], ...] = ()  # the cost table override's rows, read by the shell
    gates: dict[str, str] = {}  # gate id -> type, the gates the shell can execute
    turn_closeout: bool = False  # the exit waits for TurnClosed of every finished turn
    paused: bool = False  # dispatch nothing
    max_iterations: int = MAX_ITERATIONS
    turns_per_unit: int = 0  # the run's turn ceiling is at least this many per unit (0: max_iterations only)
    failed_runs: bool = False  # a run whose units did not all complete exits ``failed``, not ``ok``
    dense_turns: int = 0  # >= 1: TurnStarted implies the dispatch phase; >= 2: TurnFinished the outcome's finalize
    requeue: bool = False  # a run re-queues failed, blocked and amended units (uok.domain.kernel.rules.requeue)
    retry: RetryRequest | None = None  # what ``uok retry`` asked for
    permission_profile: Any = None  # the run's default profile for sub-agents (uok.domain.policies.modes)
    cost_fail_closed: bool = False  # unreadable or unpriceable usage stops the unit (rules.pricing)
    breaker_scope: str = ""  # "plan" | "shared": keys breakers and holds units ("": older runs, shared, fail)
    publish_gate: str = ""  # gitops commit: the gate id every command unit ends with (rules.gating.gates_of)
    permission_gate: str = ""  # the gate every unit under an enforced profile ends with (rules.gating.gates_of)


def run_flags(recorded: Mapping[str, Any]) -> RunFlags:
    """Type a ``KernelEntered.flags`` mapping (any version uok ever recorded)."""
    raw_gates = recorded.get("gates") or {}
    if isinstance(raw_gates, dict):
        gates = {str(g): str(t) for g, t in raw_gates.items()}
    else:  # early logs recorded the ids only
        gates = {str(g): "unknown" for g in raw_gates}
    settings, rows = recorded_settings(recorded.get("uok"))
    return RunFlags(
        settings=settings,
        cost_rows=tuple(rows),
        gates=gates,
        turn_closeout=recorded.get("turn_closeout") is True,
        paused=bool(recorded.get("paused")),
        max_iterations=int(recorded.get("max_iterations", MAX_ITERATIONS)),
        turns_per_unit=int(recorded.get("turns_per_unit", 0)),
        failed_runs=recorded.get("failed_runs") is True,
        dense_turns=dense_turns(recorded),
        requeue=recorded.get("requeue") is True,
        retry=_retry(recorded.get("retry")),
        permission_profile=recorded.get("permission_profile"),
        publish_gate=str(recorded.get("publish_gate") or ""),
        permission_gate=str(recorded.get("permission_gate") or ""),
        cost_fail_closed=recorded.get("cost_fail_closed") is True,
        breaker_scope=str(recorded.get("breaker_scope") or ""),
    )


def _retry(raw: Any) -> RetryRequest | None:
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, RetryRequest)
    except msgspec.ValidationError as exc:
        raise ConfigError("retry", f"recorded retry request does not fit: {exc}") from None


def recorded_settings(raw: Any) -> tuple[Settings, list[dict[str, Any]]]:
    """The settings and cost table rows recorded in ``flags["uok"]`` (defaults when absent)."""
    if raw is None:
        return Settings(), []
    if isinstance(raw, Settings):
        return raw, []
    if not isinstance(raw, Mapping):
        raise ConfigError("uok", f"recorded settings must be a table, got {type(raw).__name__}")
    data = {k: v for k, v in raw.items() if k not in RETIRED_SECTIONS}
    rows: list[dict[str, Any]] = []
    if isinstance(data.get("cost_guard"), Mapping):
        cost_guard = dict(data["cost_guard"])
        rows = list(cost_guard.pop("table_rows", None) or [])
        data["cost_guard"] = cost_guard
    if isinstance(data.get("gates"), Mapping):
        data["gates"] = {k: v for k, v in data["gates"].items() if k != "options"}
    if isinstance(data.get("gitops"), Mapping):
        data["gitops"] = {k: v for k, v in data["gitops"].items() if k not in ("options", "turn_push")}
    if isinstance(data.get("chaos"), Mapping) and "options" in data["chaos"]:
        data["chaos"] = _legacy_chaos(data["chaos"])
    try:
        return msgspec.convert(data, Settings), rows
    except msgspec.ValidationError as exc:
        raise ConfigError("uok", f"recorded settings do not fit the schema: {exc}") from None


def _legacy_chaos(chaos: Mapping[str, Any]) -> dict[str, Any]:
    """``{"enabled": .., "options": {..}}`` as the section it was written as.
    Options that were never checked (chaos off) fall back to the defaults:
    the settings a chaotic run used are recorded in ``flags["chaos"]``."""
    enabled = chaos.get("enabled") is True
    flat = {"enabled": enabled, **dict(chaos.get("options") or {})}
    try:
        msgspec.convert(flat, ChaosSettings)
    except msgspec.ValidationError:
        return {"enabled": enabled}
    return flat


def recorded(settings: Settings, cost_rows: list[dict[str, Any]] | tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """``flags["uok"]`` for ``KernelEntered``: the settings, with the cost table rows the shell read."""
    out: dict[str, Any] = msgspec.to_builtins(settings)
    out["cost_guard"]["table_rows"] = list(cost_rows)
    return out
