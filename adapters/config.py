"""Finding, reading and validating the uok config file.

Where: ``--config PATH`` if given; else ``uok.toml`` or a ``pyproject.toml``
with ``[tool.uok]`` in the plan's directory; else the same in the working
directory; else no file (every default applies). In ``uok.toml`` the
settings may sit under ``[uok]`` or at the top level.

Validation is all-or-nothing and happens before the event log is opened: a
bad file is a :class:`ConfigFileError` (exit 2) naming the file and the key
(``uok.gitops.turn_action: must be one of …``), and nothing is written.
The resolved :class:`~uok.domain.config.Flags`, including the rows of a cost
table override, are then recorded in ``KernelEntered.flags["uok"]``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec
from uok.domain.config import ConfigError, Flags, resolve_flags
from uok.domain.errors import InputError
from uok.domain.policies.costs import CostTable, CostTableError


class ConfigFileError(InputError):
    """A config that must not be used; ``str()`` names the file and the key."""


class LoadedConfig(msgspec.Struct, frozen=True):
    flags: Flags
    path: str = ""  # the file it came from ("" = defaults)


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
    """Find, read and resolve the config for a run. ``override`` (a ``uok``
    table given programmatically) replaces the file's table."""
    path = Path(explicit) if explicit is not None else find_config(plan_path, cwd)
    if explicit is not None and not path.is_file():
        raise ConfigFileError(f"{path}: no such config file")
    table: dict[str, Any] = {}
    if path is not None:
        table = _uok_table(path) or {}
    if override is not None:
        table = override
    try:
        flags = resolve_flags(table)
    except ConfigError as exc:
        flags = _already_resolved(override)  # e.g. the flags a recorded run carried
        if flags is None:
            where = f"{path}: " if path is not None and override is None else ""
            raise ConfigFileError(f"{where}{exc}") from None
        return LoadedConfig(flags=flags, path="")
    if flags.cost_guard.table:
        base = path.parent if path is not None else Path(plan_path).parent
        table_path = Path(flags.cost_guard.table)
        if not table_path.is_absolute():
            table_path = base / table_path
        flags.cost_guard.table_rows = read_cost_table(table_path)
    return LoadedConfig(flags=flags, path=str(path) if path is not None else "")


def _already_resolved(override: dict[str, Any] | None) -> Flags | None:
    """``override`` as resolved flags (``KernelEntered.flags["uok"]`` of an
    earlier run), or None if it is not that shape."""
    if override is None or set(override) != set(Flags.__struct_fields__):
        return None  # resolved flags list every field; a hand-written table does not
    try:
        return msgspec.convert(override, Flags)
    except msgspec.ValidationError:
        return None
