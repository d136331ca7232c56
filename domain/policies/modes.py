"""Work mode, model mode and permission profile: normalising what users write.

A unit runs under three modes. The run sets the defaults (``KernelEntered``
carries ``work_mode`` and ``model_mode``; the ``permission_profile`` flag
sets the profile), a plan task may override them in its ``metadata``, and a
sub-agent inherits its parent's effective modes unless its spawn request
overrides them (``uok.domain.kernel.rules.subagents``).

Permission profiles are ordered ``restricted < strict < standard < trusted``
(behaviour §5 ``resolvePermissionProfile``). A sub-agent may narrow its parent's
profile but never widen it: escalation through spawning would make the
profile meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from uok.domain.errors import InputError

PermissionProfile = Literal["restricted", "strict", "standard", "trusted"]

PERMISSION_PROFILES: tuple[str, ...] = ("restricted", "strict", "standard", "trusted")
# What uok enforces (behaviour §5): a ``restricted`` (read-only) unit may change
# no file, a ``strict`` one only the paths it declares (``writes``, write
# intents), both checked against the turn's real change set by the
# ``permissions`` gate. ``standard`` and ``trusted`` are not checked by uok.
ENFORCED_PROFILES = ("restricted", "strict")
DEFAULT_PERMISSION_PROFILE = "standard"
DEFAULT_WORK_MODE = "auto"
DEFAULT_MODEL_MODE = "default"

# Spellings people use for the same profile. Anything else is an error, not
# a silent default: a typo in a security setting must not widen it.
_ALIASES = {
    "restricted": "restricted",
    "restrict": "restricted",
    "read-only": "restricted",
    "readonly": "restricted",
    "sandboxed": "restricted",
    "strict": "strict",
    "declared": "strict",
    "declared-only": "strict",
    "standard": "standard",
    "default": "standard",
    "normal": "standard",
    "trusted": "trusted",
    "full": "trusted",
    "unrestricted": "trusted",
}

MODE_KEYS = ("work_mode", "model_mode", "permission_profile")


class ModeError(InputError, ValueError):
    """A mode value that cannot be normalised."""


def resolve_permission_profile(value: Any = None) -> str:
    """The canonical profile for a preference value; ``None``/empty → ``standard``.

    Trimmed and case-insensitive; unknown values raise :class:`ModeError`.
    """
    if value is None:
        return DEFAULT_PERMISSION_PROFILE
    if not isinstance(value, str):
        raise ModeError(f"permission profile must be a string, got {type(value).__name__}")
    key = value.strip().lower()
    if not key:
        return DEFAULT_PERMISSION_PROFILE
    try:
        return _ALIASES[key]
    except KeyError:
        raise ModeError(
            f"unknown permission profile {value!r} (expected one of {', '.join(PERMISSION_PROFILES)})"
        ) from None


def profile_rank(profile: str) -> int:
    """0 restricted, 1 strict, 2 standard, 3 trusted."""
    return PERMISSION_PROFILES.index(resolve_permission_profile(profile))


def resolve_mode(value: Any, default: str) -> str:
    """A work or model mode: a non-empty trimmed string, else ``default``.

    Modes are open vocabularies (model routers define their own), so only
    the shape is checked here."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise ModeError(f"mode must be a string, got {type(value).__name__}")
    return value.strip() or default


def node_modes(metadata: dict[str, Any], defaults: dict[str, str]) -> dict[str, str]:
    """Effective modes of a unit: its metadata overrides over the run defaults."""
    return {
        "work_mode": resolve_mode(metadata.get("work_mode"), defaults["work_mode"]),
        "model_mode": resolve_mode(metadata.get("model_mode"), defaults["model_mode"]),
        "permission_profile": resolve_permission_profile(
            metadata.get("permission_profile") or defaults["permission_profile"]
        ),
    }


def route_model(model_mode: str, models: Mapping[str, str]) -> str:
    """The model the routing table (``[uok.models]``: model mode -> model)
    names for ``model_mode``; ``""`` when it names none (the task chooses)."""
    return models.get(model_mode, "")


def parse_mode_change(argument: str) -> dict[str, str]:
    """A steering ``mode`` argument: ``model_mode=fast``, ``work_mode=review
    model_mode=deep``, or a bare word meaning the model mode. Raises
    :class:`ModeError` naming what is wrong."""
    words = argument.split()
    if not words:
        raise ModeError("mode needs model_mode=M and/or work_mode=W")
    if len(words) == 1 and "=" not in words[0]:
        return {"model_mode": resolve_mode(words[0], DEFAULT_MODEL_MODE)}
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in ("work_mode", "model_mode") or not value.strip():
            raise ModeError(f"mode takes work_mode=W and model_mode=M, got {word!r}")
        out[key] = value.strip()
    return out
