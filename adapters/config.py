"""Finding, reading and validating the uok config file.

Where: ``--config PATH`` if given; else ``uok.toml`` or a ``pyproject.toml``
with ``[tool.uok]`` in the plan's directory; else the same in the working
directory; else no file (every default applies). In ``uok.toml`` the
settings may sit under ``[uok]`` or at the top level.

The schema is :class:`uok.domain.config.Settings` (msgspec Structs).
Validation is all-or-nothing and happens before the event log is opened: a
bad file (an unknown section or key, a wrong type, a value outside its
constraints) is a :class:`ConfigFileError` (exit 2) naming the file and the
dotted key (``uok.gitops.turn_action: must be one of …``), and nothing is
written. The settings, with the rows of a cost table override, are then
recorded in ``KernelEntered.flags["uok"]`` (:func:`uok.domain.config.recorded`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec
from uok.domain.config import ConfigError, Settings, parse_settings, recorded_settings
from uok.domain.errors import InputError
from uok.domain.policies.costs import CostTable, CostTableError


class ConfigFileError(InputError):
    """A config that must not be used; ``str()`` names the file and the key."""


class LoadedConfig(msgspec.Struct, frozen=True):
    settings: Settings
    path: str = ""  # the file it came from ("" = defaults)
    cost_rows: tuple[dict[str, Any], ...] = ()  # rows of the cost table override, if any


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: malformed TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read config: {exc}") from None


def _uok_table(path: Path) -> dict[str, Any] | None:
    """The uok settings in a file; None if a pyproject.toml has none."""
    doc = _read_toml(path)
    if path.name == "pyproject.toml":
        tool = doc.get("tool", {})
        return tool.get("uok") if isinstance(tool, dict) and "uok" in tool else None
    if "uok" in doc:
        extra = [k for k in doc if k != "uok"]
        if extra:
            raise ConfigFileError(f"{path}: {extra[0]}: unknown top-level key (put settings under [uok])")
        return doc["uok"]
    return doc


def find_config(plan_path: Path, cwd: Path | None = None) -> Path | None:
    """The config file that applies to a plan (None: defaults)."""
    dirs = [Path(plan_path).resolve().parent]
    here = (cwd or Path.cwd()).resolve()
    if here not in dirs:
        dirs.append(here)
    for d in dirs:
        if (d / "uok.toml").is_file():
            return d / "uok.toml"
        py = d / "pyproject.toml"
        if py.is_file() and _uok_table(py) is not None:
            return py
    return None


def read_cost_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a cost table override (TOML ``[[models]]`` or JSON)."""
    key = "uok.cost_guard.table"
    if not path.is_file():
        raise ConfigFileError(f"{key}: no such file {path}")
    try:
        if path.suffix.lower() == ".json":
            doc: Any = json.loads(path.read_text(encoding="utf-8"))
        else:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigFileError(f"{key}: cannot read {path}: {exc}") from None
    rows = doc.get("models") if isinstance(doc, dict) else doc
    if isinstance(rows, dict):  # {"model-id": {...}} form
        rows = [{"id": k, **v} if isinstance(v, dict) else v for k, v in rows.items()]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigFileError(f"{key}: {path} must hold a list of model rows under 'models'")
    try:
        CostTable.with_overrides(rows)
    except CostTableError as exc:
        raise ConfigFileError(f"{key}: {path}: {exc}") from None
    return rows


def load_config(
    plan_path: Path, explicit: Path | None = None, *, cwd: Path | None = None, override: dict[str, Any] | None = None
) -> LoadedConfig:
    """Find, read and validate the config for a run. ``override`` (a ``uok``
    table given programmatically) replaces the file's table; it may also be
    the settings an earlier run recorded (``KernelEntered.flags["uok"]``)."""
    path: Path | None
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigFileError(f"{path}: no such config file")
    else:
        path = find_config(plan_path, cwd)
    table: dict[str, Any] = {}
    if path is not None:
        table = _uok_table(path) or {}
    if override is not None:
        table = override
    try:
        settings = parse_settings(table)
    except ConfigError as exc:
        again = _as_recorded(override)  # e.g. the settings a recorded run carried
        if again is None:
            where = f"{path}: " if path is not None and override is None else ""
            raise ConfigFileError(f"{where}{exc}") from None
        return again
    rows: list[dict[str, Any]] = []
    if settings.cost_guard.table:
        base = path.parent if path is not None else Path(plan_path).parent
        table_path = Path(settings.cost_guard.table)
        if not table_path.is_absolute():
            table_path = base / table_path
        rows = read_cost_table(table_path)
    return LoadedConfig(settings=settings, path=str(path) if path is not None else "", cost_rows=tuple(rows))


def _as_recorded(override: dict[str, Any] | None) -> LoadedConfig | None:
    """``override`` read as the settings an earlier run recorded, or None if
    it is not that shape (recorded settings carry the cost table rows)."""
    cost_guard = override.get("cost_guard") if override is not None else None
    if not isinstance(cost_guard, dict) or "table_rows" not in cost_guard:
        return None  # a hand-written table: its error stands
    try:
        settings, rows = recorded_settings(override)
    except ConfigError:
        return None
    return LoadedConfig(settings=settings, cost_rows=tuple(rows))
