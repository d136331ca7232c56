"""The schema of ``uok.toml`` / ``[tool.uok]``: msgspec Structs, one per section.

The Structs *are* the schema: a key the file may hold is a field here, with
its type, default and constraints declared on it (``msgspec.Meta``); any
other key is an error (``forbid_unknown_fields``). The shell finds and
reads the file (``uok.adapters.config``), :func:`uok.domain.config.parse_settings`
validates it into :class:`Settings`, and the run records the result in
``KernelEntered.flags["uok"]``, so a replay decides with the settings the
run had, whatever the file says later.

Every section changes something, and a test shows what:

* ``[uok] enabled``: false skips every gate and the cost guard;
* ``[uok.gates]``: ``enabled = false`` skips every listed gate;
* ``[uok.breakers]``: every gate's circuit breaker (``uok.domain.policies.breaker``);
* ``[uok.cost_guard]``: the cost guard's ceilings and cost table;
* ``[uok.security_guard]``: the security gate's switch, timeout and extra files;
* ``[uok.gate.<id>]``: one gate's defaults (command, timeout, files, breaker);
* ``[uok.gitops]``: a veto on ``uok run --gitops`` and its turn action;
* ``[uok.chaos]``: the chaos monkey, off by default;
* ``[uok.tasks]``: how tasks are stopped (grace period) and watched (heartbeat);
* ``[uok] work_mode`` / ``model_mode``: the run's modes unless ``uok run
  --work-mode`` / ``--model-mode`` say otherwise; ``[uok.models]``: the
  routing table, model mode -> model, handed to each task as ``UOK_MODEL``.

Every feature is on unless switched off, except chaos and gitops, which
act only when asked for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from uok.domain.events import FAULTS, Fault
from uok.domain.policies.breaker import BreakerPolicy

FLOAT_MAX = float.fromhex("0x1.fffffffffffffp+1023")  # the largest finite float: "<= FLOAT_MAX" means finite
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0, le=FLOAT_MAX)]  # finite, > 0
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=FLOAT_MAX)]  # finite, >= 0
Name = Annotated[str, msgspec.Meta(min_length=1)]

TurnAction = Literal["commit", "snapshot", "status-only"]
TURN_ACTIONS: tuple[str, ...] = ("commit", "snapshot", "status-only")


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every section: an unknown key is an error, never ignored."""


class GatesSettings(Section):
    """``[uok.gates]``"""

    enabled: bool = True  # false: every listed gate is recorded as skip


class BreakerSettings(Section):
    """``[uok.breakers]``: the policy of every gate's breaker."""

    enabled: bool = True  # false: no breaker is consulted, nothing short-circuits
    failure_threshold: PositiveInt = 3
    open_seconds: Positive = 30.0
    max_streak: Count = 5
    half_open_max_probes: PositiveInt = 1
    scope: Literal["plan", "shared"] = "plan"  # one breaker per plan and gate, or one per gate for every plan
    hold: bool = True  # a unit whose breaker is open is held and dispatched again at the probe (false: it fails)
    max_holds: PositiveInt = 3  # ... at most this many times in a run, then it fails as before (policy)
    half_open_timeout_seconds: Positive = 60.0


class BreakerOverride(Section, omit_defaults=True):
    """``[uok.gate.<id>.breaker]``: one gate's breaker, over ``[uok.breakers]``."""

    failure_threshold: PositiveInt | None = None
    open_seconds: Positive | None = None
    max_streak: Count | None = None
    half_open_max_probes: PositiveInt | None = None
    half_open_timeout_seconds: Positive | None = None


class CostGuardSettings(Section):
    """``[uok.cost_guard]`` (``uok.domain.policies.cost_guard``)."""

    enabled: bool = True
    per_unit_usd: Positive = 2.0
    per_hour_usd: Positive = 20.0
    window_seconds: Positive = 3600.0
    high_tier_input_per_1k: Positive = 0.005
    failure_threshold: PositiveInt = 3
    table: str = ""  # cost table override file (TOML/JSON), relative to the config file
    unpriced: Literal["stop", "warn"] = "stop"  # usage it cannot read or price: stop the unit, or only say so


class SecurityGuardSettings(Section):
    """``[uok.security_guard]``"""

    enabled: bool = True  # false: the security gate is recorded as skip
    timeout_seconds: Positive = 30.0
    files: list[Name] = []  # scanned for every task that lists the security gate
    unscannable: Literal["fail", "skip"] = "fail"  # a changed file the scanner cannot read: never a pass
    max_file_bytes: PositiveInt = 5 * 1024 * 1024  # larger files are unscannable


class GitopsSettings(Section):
    """``[uok.gitops]``: git transactions run only when ``uok run --gitops``
    asks; ``enabled = false`` vetoes them, ``turn_action`` is what they do."""

    enabled: bool = True
    turn_action: TurnAction = "commit"
    push_remote: str = ""  # commit: push the branch to this remote after each unit's commit ("": never)


class GateDefaults(Section):
    """``[uok.gate.<id>]``: defaults a task's inline gate table may override."""

    enabled: bool = True
    command: list[Name] | str | None = None  # argv; a string only with shell = true
    shell: bool = False
    timeout: Positive | None = None
    files: list[Name] = []
    breaker: BreakerOverride = msgspec.field(default_factory=BreakerOverride)

    def __post_init__(self) -> None:
        if isinstance(self.command, str):
            if not (self.shell and self.command.strip()):
                raise ValueError("command: must be an array of non-empty strings (a string only with shell = true)")
            self.command = [self.command]


class ChaosSettings(Section):
    """``[uok.chaos]``: the chaos monkey (``uok.adapters.chaos``); off by default."""

    enabled: bool = False
    seed: Count = 0
    rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2  # probability of a fault per boundary
    faults: Annotated[tuple[Fault, ...], msgspec.Meta(min_length=1)] = FAULTS
    max_latency_ms: NonNegative = 250.0  # latency: sleep U(0, max)
    disk_mb: NonNegative = 8.0  # disk stress: write, fsync and delete a temp file this big
    memory_mb: NonNegative = 32.0  # memory stress: allocate, touch and free this much
    disk_dir: str = ""  # where disk stress writes ("" = beside the event log)


class TaskSettings(Section):
    """``[uok.tasks]``: how the shell stops and watches tasks (``uok.adapters.taskprocess``)."""

    grace_seconds: NonNegative = 10.0  # SIGTERM, then this long, then SIGKILL; a task's own ``grace`` wins
    heartbeat_seconds: Positive | None = None  # a task silent this long is stopped; a task's ``heartbeat`` wins


class Settings(Section):
    """``[uok]``: the whole file."""

    enabled: bool = True  # false: gates and the cost guard are skipped (recorded as skip)
    gates: GatesSettings = msgspec.field(default_factory=GatesSettings)
    breakers: BreakerSettings = msgspec.field(default_factory=BreakerSettings)
    cost_guard: CostGuardSettings = msgspec.field(default_factory=CostGuardSettings)
    security_guard: SecurityGuardSettings = msgspec.field(default_factory=SecurityGuardSettings)
    gitops: GitopsSettings = msgspec.field(default_factory=GitopsSettings)
    chaos: ChaosSettings = msgspec.field(default_factory=ChaosSettings)
    tasks: TaskSettings = msgspec.field(default_factory=TaskSettings)
    gate: dict[str, GateDefaults] = {}
    work_mode: Name | None = None  # the run's work mode (uok run --work-mode wins); None: "auto"
    model_mode: Name | None = None  # the run's model mode (uok run --model-mode wins); None: "default"
    models: dict[Name, Name] = {}  # routing table: model mode -> the model handed as UOK_MODEL
    permission_profile: Name | None = (
        None  # restricted | strict | standard | trusted (uok run --permission-profile wins)
    )

    def breaker_policy(self, gate_id: str) -> BreakerPolicy:
        """The breaker policy for one gate: global settings, then its overrides."""
        b = self.breakers
        base: dict[str, Any] = {
            "failure_threshold": b.failure_threshold,
            "open_seconds": b.open_seconds,
            "max_streak": b.max_streak,
            "half_open_max_probes": b.half_open_max_probes,
            "half_open_timeout_seconds": b.half_open_timeout_seconds,
        }
        g = self.gate.get(gate_id)
        if g is not None:
            base.update({k: v for k, v in msgspec.structs.asdict(g.breaker).items() if v is not None})
        return BreakerPolicy(**base)

    def gate_enabled(self, gate_id: str) -> tuple[bool, str]:
        """(enabled, the key that disabled it)."""
        if not self.enabled:
            return False, "uok.enabled"
        if not self.gates.enabled:
            return False, "uok.gates.enabled"
        if gate_id == "security" and not self.security_guard.enabled:
            return False, "uok.security_guard.enabled"
        g = self.gate.get(gate_id)
        if g is not None and not g.enabled:
            return False, f"uok.gate.{gate_id}.enabled"
        return True, ""
