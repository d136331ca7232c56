"""Running one requested gate attempt, whatever the gate does.

The kernel records ``GateRequested``; the runner asks :class:`GateHost` for
the attempt's :class:`GateContext` (built on the main thread, from the
compiled plan and the config) and then, on a worker thread, for the
``GateEvaluated`` observation. The host never raises and never hangs the
run:

* a gate that raises becomes ``fail``/``unknown`` with the exception's
  message as the rationale (behaviour §2: the runner never throws);
* a gate that returns something malformed becomes ``fail``/``unknown``;
* a gate that does not return within its deadline (its timeout plus a
  grace period) becomes ``fail``/``timeout`` — its thread is abandoned;
* rationales and finding messages are redacted before they are recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from uok.adapters.gates.deadline import call_with_deadline
from uok.adapters.gates.registry import GateRegistry
from uok.domain.config import Settings, recorded
from uok.domain.events import Finding, GateEvaluated, GateRequested, GateRun
from uok.domain.policies.gates import GateContext, GateResult

log = logging.getLogger("uok.gates")

DEFAULT_DEADLINE = 900.0  # seconds, for a gate with no timeout of its own
GRACE = 30.0  # seconds past a gate's own timeout before the host gives up on it
MAX_RATIONALE = 4000
_OUTCOMES = ("pass", "fail", "skip", "manual-attention")


class GateHost:
    def __init__(
        self,
        registry: GateRegistry,
        root: Path,
        settings: Settings,
        *,
        redact: Callable[[str], str] = lambda s: s,
        clock: Callable[[], datetime],
        grace: float = GRACE,
    ):
        self.registry = registry
        self.grace = grace
        self.root = Path(root)
        self.settings = settings
        self.redact = redact
        self.clock = clock
        self.planned: dict[str, Any] = {}  # unit id -> the unit as the plan file has it (the log's is redacted)

    def context(self, req: GateRequested, kernel) -> GateContext:
        """The attempt's context: the task's inline options over the config's defaults."""
        node = self.planned.get(req.unit_id) or kernel.state.nodes.get(req.unit_id)
        spec = next((s for s in node.gate_specs if s.id == req.gate_id), None) if node else None
        defaults = self.settings.gate.get(req.gate_id)
        if spec is not None and spec.command:
            command, shell = spec.command, spec.shell
        elif defaults is not None and defaults.command:
            command, shell = tuple(defaults.command), defaults.shell
        else:
            command, shell = None, False
        timeout = (spec.timeout if spec else None) or (defaults.timeout if defaults else None)
        files = tuple(dict.fromkeys([*(spec.files if spec else ()), *(defaults.files if defaults else ())]))
        return GateContext(
            run_id=req.run_id,
            turn_id=req.turn_id,
            unit_id=req.unit_id,
            gate_id=req.gate_id,
            unit_type=node.unit_type if node else "",
            plan_id=kernel.state.plan_id,
            milestone=node.milestone if node else "",
            slice=node.slice if node else "",
            base_path=str(self.root),
            cwd=node.cwd if node else None,
            writes=node.writes if node else (),
            command=command,
            shell=shell,
            timeout=timeout,
            files=files,
            env=dict(node.env) if node else {},
            options=self._permissions(req, kernel, node),
        )

    @staticmethod
    def _permissions(req: GateRequested, kernel, node) -> dict:
        """What the permissions gate judges by (uok.adapters.gates.permissions)."""
        if node is None or req.gate_id != kernel.state.flags.permission_gate:
            return {}
        modes = kernel.dispatched_node(req.unit_id, node).metadata
        return {"permission_profile": modes["permission_profile"], "write_intents": list(node.write_intents)}

    def evaluate(self, req: GateRequested, ctx: GateContext) -> GateEvaluated:
        """Execute the attempt; always returns an observation."""
        started = time.monotonic()
        result = self._execute(req, ctx)
        findings = tuple(msgspec.structs.replace(f, message=self.redact(f.message)) for f in result.findings)
        return GateEvaluated(
            run_id=req.run_id,
            at=self.clock(),
            turn_id=req.turn_id,
            unit_id=req.unit_id,
            gate_id=req.gate_id,
            gate_type=req.gate_type,
            attempt=req.attempt,
            outcome=result.outcome,
            failure_class=result.failure_class,
            rationale=self.redact(result.rationale)[:MAX_RATIONALE],
            findings=findings,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    def _execute(self, req: GateRequested, ctx: GateContext) -> GateResult:
        gate = self.registry.get(req.gate_id)
        if gate is None:
            return GateResult(outcome="fail", failure_class="unknown", rationale=f"Gate {req.gate_id} not registered")
        deadline = (ctx.timeout + self.grace) if ctx.timeout else DEFAULT_DEADLINE
        done = call_with_deadline(lambda: gate.execute(ctx, req.attempt), deadline, name=f"uok-gate-{req.gate_id}")
        if not done.finished:
            return GateResult(
                outcome="fail",
                failure_class="timeout",
                rationale=f"gate {req.gate_id} did not return within {deadline:g} s",
            )
        if done.error is not None:  # the runner never raises (behaviour §2)
            return GateResult(
                outcome="fail", failure_class="unknown", rationale=str(done.error) or type(done.error).__name__
            )
        return _as_result(done.value)

    def note(self, d: object) -> None:
        """Shell-side reactions to decisions: log what the domain cannot."""
        if isinstance(d, GateRun) and d.memory_error:
            log.warning("gate %s: failure memory unavailable (%s); recorded without it", d.gate_id, d.memory_error)

    def cancel_all(self) -> None:
        for gate in self.registry.list():
            cancel = getattr(gate, "cancel_all", None)
            if callable(cancel):
                try:
                    cancel()
                except Exception as exc:  # noqa: BLE001
                    log.warning("gate %s: cancel failed: %s", gate.id, exc)


def _as_result(value: object) -> GateResult:
    if isinstance(value, dict):
        try:
            value = msgspec.convert(value, GateResult)
        except msgspec.ValidationError as exc:
            return GateResult(
                outcome="fail", failure_class="unknown", rationale=f"gate returned an invalid result: {exc}"
            )
    if not isinstance(value, GateResult):
        return GateResult(
            outcome="fail", failure_class="unknown", rationale=f"gate returned {type(value).__name__}, not a GateResult"
        )
    if value.outcome not in _OUTCOMES:
        return GateResult(outcome="fail", failure_class="unknown", rationale=f"gate returned outcome {value.outcome!r}")
    bad = [f for f in value.findings if not isinstance(f, Finding)]
    if bad:
        return GateResult(
            outcome="fail", failure_class="unknown", rationale="gate returned findings that are not Finding records"
        )
    return value


def setup_gates(
    plan_path: Path,
    flags: dict,
    *,
    config: Path | None = None,
    registry: GateRegistry | None = None,
    clock: Callable[[], datetime],
) -> tuple[GateHost, dict]:
    """Resolve the config and the registry for a run.

    Returns the host and the run's flags with ``"uok"`` (the resolved
    settings) and ``"gates"`` (registered id -> type) filled in, ready for
    ``KernelEntered``. A ``flags["uok"]`` passed in is taken as the config
    table (it replaces the file's). Raises ``ConfigFileError`` on a bad config.
    """
    from uok.adapters.config import load_config
    from uok.adapters.gates.registry import default_registry
    from uok.adapters.secrets import redact

    override = flags.get("uok") if isinstance(flags.get("uok"), dict) else None
    loaded = load_config(Path(plan_path), config, override=override)
    registry = registry if registry is not None else default_registry(loaded.settings)
    out = {**flags, "uok": recorded(loaded.settings, loaded.cost_rows), "gates": registry.types()}
    if loaded.path:
        out["config_path"] = loaded.path
    host = GateHost(registry, Path(plan_path).parent, loaded.settings, redact=redact, clock=clock)
    return host, out


def check_gate_ids(graph, gates: dict[str, str], plan_path: str) -> None:
    """Every gate a task names must be one the run can execute: a typo
    (``gates = ["securty"]``) is a plan mistake, reported before anything
    runs (exit 2), not a unit blocked after its command ran (issue 12)."""
    from uok.domain.plan import PlanError

    for node in graph.nodes:
        unknown = [g for g in node.gates if g not in gates]
        if unknown:
            known = ", ".join(sorted(gates)) or "none"
            raise PlanError(plan_path, f"unknown gate {', '.join(map(repr, unknown))} (known: {known})", node.id)
