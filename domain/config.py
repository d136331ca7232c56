"""Feature flags and settings (behaviour §5): a config dict in, typed ``Flags`` out.

Resolution is pure: the shell finds and parses the file (``adapters/config``)
and records the *resolved* flags in ``KernelEntered.flags["uok"]``, so a
replay decides with the settings the run had, whatever the file says later.

Every feature is on unless switched off (``?? true``): ``gates``,
``breakers``, ``cost_guard``, ``security_guard``, ``metrics``,
``message_bus``, ``gitops``, ``model_policy``, ``execution_graph``,
``audit_unified``, ``plan_v2``. ``chaos`` is the one feature that is off by
default. ``gitops.enabled`` is a veto only: git transactions are recorded
when the run asks for them (``uok run --gitops``), since they commit in the
user's repository. A mistake (unknown key, wrong type, ``turn_action`` outside
commit|snapshot|status-only) raises :class:`ConfigError` naming the key,
e.g. ``uok.gitops.turn_action``, and nothing runs.

Config shape (TOML, all optional; see docs/gates.md for every key)::

    [uok]
    enabled = true
    [uok.breakers]        # defaults for every gate's breaker
    failure_threshold = 3
    [uok.cost_guard]
    per_unit_usd = 2.0
    [uok.gate.verification]   # per-gate defaults
    command = ["python3", "-m", "pytest", "-q"]
    [uok.gate.verification.breaker]
    failure_threshold = 5
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from uok.domain.errors import InputError
from uok.domain.policies.breaker import BreakerPolicy

TURN_ACTIONS = ("commit", "snapshot", "status-only")


class ConfigError(InputError, ValueError):
    """A config value that must not be used. ``key`` is its dotted path."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


class Feature(msgspec.Struct, kw_only=True):
    """A feature owned elsewhere: on/off plus its own options, passed through."""

    enabled: bool = True
    options: dict[str, Any] = {}


class BreakerSettings(msgspec.Struct, kw_only=True):
    enabled: bool = True
    failure_threshold: int = 3
    open_seconds: float = 30.0
    max_streak: int = 5
    half_open_max_probes: int = 1
    half_open_timeout_seconds: float = 60.0


class CostGuardSettings(msgspec.Struct, kw_only=True):
    enabled: bool = True
    per_unit_usd: float = 2.0
    per_hour_usd: float = 20.0
    window_seconds: float = 3600.0
    high_tier_input_per_1k: float = 0.005
    failure_threshold: int = 3
    table: str = ""  # override file (TOML/JSON), relative to the config file
    table_rows: list[dict[str, Any]] = []  # its rows, as read by the shell


class SecurityGuardSettings(msgspec.Struct, kw_only=True):
    enabled: bool = True
    timeout_seconds: float = 30.0
    files: list[str] = []


class GitopsSettings(msgspec.Struct, kw_only=True):
    enabled: bool = True
    turn_action: str = "commit"
    turn_push: bool = False
    options: dict[str, Any] = {}


class GateDefaults(msgspec.Struct, kw_only=True):
    """``[uok.gate.<id>]``: defaults a task's inline gate table may override."""

    enabled: bool = True
    command: list[str] | None = None
    shell: bool = False
    timeout: float | None = None
    files: list[str] = []
    breaker: dict[str, Any] = {}


class Flags(msgspec.Struct, kw_only=True):
    enabled: bool = True
    gates: Feature = msgspec.field(default_factory=Feature)
    breakers: BreakerSettings = msgspec.field(default_factory=BreakerSettings)
    cost_guard: CostGuardSettings = msgspec.field(default_factory=CostGuardSettings)
    security_guard: SecurityGuardSettings = msgspec.field(default_factory=SecurityGuardSettings)
    gitops: GitopsSettings = msgspec.field(default_factory=GitopsSettings)
    metrics: Feature = msgspec.field(default_factory=Feature)
    message_bus: Feature = msgspec.field(default_factory=Feature)
    model_policy: Feature = msgspec.field(default_factory=Feature)
    execution_graph: Feature = msgspec.field(default_factory=Feature)
    audit_unified: Feature = msgspec.field(default_factory=Feature)
    plan_v2: Feature = msgspec.field(default_factory=Feature)
    chaos: Feature = msgspec.field(default_factory=lambda: Feature(enabled=False))
    gate: dict[str, GateDefaults] = {}

    def breaker_policy(self, gate_id: str) -> BreakerPolicy:
        """The breaker policy for one gate: global settings, then its overrides."""
        b = self.breakers
        base = {
            "failure_threshold": b.failure_threshold,
            "open_seconds": b.open_seconds,
            "max_streak": b.max_streak,
            "half_open_max_probes": b.half_open_max_probes,
            "half_open_timeout_seconds": b.half_open_timeout_seconds,
        }
        g = self.gate.get(gate_id)
        if g is not None:
            base.update(g.breaker)
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


_FEATURES = ("gates", "metrics", "message_bus", "model_policy", "execution_graph", "audit_unified", "plan_v2", "chaos")
_BREAKER_INTS = {"failure_threshold": 1, "max_streak": 0, "half_open_max_probes": 1}
_BREAKER_FLOATS = ("open_seconds", "half_open_timeout_seconds")


def _table(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a table, got {type(value).__name__}")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    return value


def _int(value: Any, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _number(value: Any, key: str, *, positive: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ConfigError(key, f"must be a number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "must be an array of non-empty strings")
    return list(value)


def _unknown(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"{prefix}.{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _breaker_fields(t: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in t.items():
        if k in _BREAKER_INTS:
            out[k] = _int(v, f"{prefix}.{k}", _BREAKER_INTS[k])
        elif k in _BREAKER_FLOATS:
            out[k] = _number(v, f"{prefix}.{k}")
    return out


def resolve_flags(config: dict[str, Any] | None) -> Flags:
    """Validate the ``uok`` table of a config and resolve it into :class:`Flags`."""
    cfg = _table(config or {}, "uok")
    known = {"enabled", "breakers", "cost_guard", "security_guard", "gitops", "gate", *_FEATURES}
    _unknown(cfg, known, "uok")
    flags = Flags()
    if "enabled" in cfg:
        flags.enabled = _bool(cfg["enabled"], "uok.enabled")
    for name in _FEATURES:
        if name in cfg:
            t = dict(_table(cfg[name], f"uok.{name}"))
            feature = getattr(flags, name)
            if "enabled" in t:
                feature.enabled = _bool(t.pop("enabled"), f"uok.{name}.enabled")
            if name == "gates":
                _unknown(t, set(), "uok.gates")
            feature.options = t

    if "breakers" in cfg:
        t = _table(cfg["breakers"], "uok.breakers")
        _unknown(t, {"enabled", *_BREAKER_INTS, *_BREAKER_FLOATS}, "uok.breakers")
        b = flags.breakers
        if "enabled" in t:
            b.enabled = _bool(t["enabled"], "uok.breakers.enabled")
        for k, v in _breaker_fields(t, "uok.breakers").items():
            setattr(b, k, v)

    if "cost_guard" in cfg:
        t = _table(cfg["cost_guard"], "uok.cost_guard")
        c = flags.cost_guard
        _unknown(
            t,
            {
                "enabled",
                "per_unit_usd",
                "per_hour_usd",
                "window_seconds",
                "high_tier_input_per_1k",
                "failure_threshold",
                "table",
            },
            "uok.cost_guard",
        )
        if "enabled" in t:
            c.enabled = _bool(t["enabled"], "uok.cost_guard.enabled")
        for k in ("per_unit_usd", "per_hour_usd", "window_seconds", "high_tier_input_per_1k"):
            if k in t:
                setattr(c, k, _number(t[k], f"uok.cost_guard.{k}"))
        if "failure_threshold" in t:
            c.failure_threshold = _int(t["failure_threshold"], "uok.cost_guard.failure_threshold", 1)
        if "table" in t:
            if not isinstance(t["table"], str) or not t["table"]:
                raise ConfigError("uok.cost_guard.table", "must be a non-empty path string")
            c.table = t["table"]

    if "security_guard" in cfg:
        t = _table(cfg["security_guard"], "uok.security_guard")
        _unknown(t, {"enabled", "timeout_seconds", "files"}, "uok.security_guard")
        s = flags.security_guard
        if "enabled" in t:
            s.enabled = _bool(t["enabled"], "uok.security_guard.enabled")
        if "timeout_seconds" in t:
            s.timeout_seconds = _number(t["timeout_seconds"], "uok.security_guard.timeout_seconds")
        if "files" in t:
            s.files = _strings(t["files"], "uok.security_guard.files")

    if "gitops" in cfg:
        t = dict(_table(cfg["gitops"], "uok.gitops"))
        g = flags.gitops
        if "enabled" in t:
            g.enabled = _bool(t.pop("enabled"), "uok.gitops.enabled")
        if "turn_action" in t:
            action = t.pop("turn_action")
            if action not in TURN_ACTIONS:
                raise ConfigError("uok.gitops.turn_action", f"must be one of {', '.join(TURN_ACTIONS)}, got {action!r}")
            g.turn_action = action
        if "turn_push" in t:
            g.turn_push = _bool(t.pop("turn_push"), "uok.gitops.turn_push")
        g.options = t

    if "gate" in cfg:
        for gid, raw in _table(cfg["gate"], "uok.gate").items():
            flags.gate[gid] = _gate_defaults(raw, f"uok.gate.{gid}")
    return flags


def _gate_defaults(raw: Any, prefix: str) -> GateDefaults:
    t = _table(raw, prefix)
    _unknown(t, {"enabled", "command", "shell", "timeout", "files", "breaker"}, prefix)
    g = GateDefaults()
    if "enabled" in t:
        g.enabled = _bool(t["enabled"], f"{prefix}.enabled")
    if "shell" in t:
        g.shell = _bool(t["shell"], f"{prefix}.shell")
    if "command" in t:
        cmd = t["command"]
        if g.shell and isinstance(cmd, str) and cmd.strip():
            g.command = [cmd]
        else:
            g.command = _strings(cmd, f"{prefix}.command")
    if "timeout" in t:
        g.timeout = _number(t["timeout"], f"{prefix}.timeout")
    if "files" in t:
        g.files = _strings(t["files"], f"{prefix}.files")
    if "breaker" in t:
        b = _table(t["breaker"], f"{prefix}.breaker")
        _unknown(b, {*_BREAKER_INTS, *_BREAKER_FLOATS}, f"{prefix}.breaker")
        g.breaker = _breaker_fields(b, f"{prefix}.breaker")
    return g


def recorded_flags(flags: dict[str, Any]) -> Flags:
    """The resolved flags a ``KernelEntered`` carries (defaults when absent)."""
    raw = flags.get("uok")
    if raw is None:
        return Flags()
    if isinstance(raw, Flags):
        return raw
    return msgspec.convert(raw, Flags)
