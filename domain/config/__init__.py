"""The settings of a run: the schema of ``uok.toml`` / ``[tool.uok]``
(:mod:`~uok.domain.config.schema`), its validation with errors naming the
dotted key (:mod:`~uok.domain.config.parse`), and the flags a run records
in ``KernelEntered``, typed once by the kernel (:mod:`~uok.domain.config.recorded`)."""

from uok.domain.config.parse import ConfigError, parse_settings
from uok.domain.config.recorded import (
    MAX_ITERATIONS,
    RETIRED_SECTIONS,
    RunFlags,
    recorded,
    recorded_settings,
    run_flags,
)
from uok.domain.config.schema import (
    TURN_ACTIONS,
    BreakerOverride,
    BreakerSettings,
    ChaosSettings,
    CostGuardSettings,
    GateDefaults,
    GatesSettings,
    GitopsSettings,
    SecurityGuardSettings,
    Settings,
    TaskSettings,
)

__all__ = [
    "MAX_ITERATIONS",
    "RETIRED_SECTIONS",
    "TURN_ACTIONS",
    "BreakerOverride",
    "BreakerSettings",
    "ChaosSettings",
    "ConfigError",
    "CostGuardSettings",
    "GateDefaults",
    "GatesSettings",
    "GitopsSettings",
    "RunFlags",
    "SecurityGuardSettings",
    "Settings",
    "TaskSettings",
    "parse_settings",
    "recorded",
    "recorded_settings",
    "run_flags",
]
