"""Validating a config table against the schema, with errors that name the key.

msgspec does the validation (types, constraints, unknown keys); this module
turns its message into one line naming the dotted path of the offending key
(``uok.breakers.failure_threshold: expected `int` >= 1, got 0``), the value
found there, and for an unknown key the keys that are allowed.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from uok.domain.config.schema import FLOAT_MAX, GateDefaults, Settings
from uok.domain.errors import InputError

_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
_MISSING = object()
T = TypeVar("T")


class ConfigError(InputError, ValueError):
    """A config value that must not be used. ``key`` is its dotted path."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


def parse_settings(table: Any) -> Settings:
    """Validate the ``uok`` table of a config file into :class:`Settings`."""
    if not isinstance(table, dict):
        raise ConfigError("uok", f"must be a table, got {type(table).__name__}")
    gates = table.get("gate")
    if isinstance(gates, dict):  # one by one, so an error names the gate id
        for gate_id, raw in gates.items():
            _convert(raw, GateDefaults, f"uok.gate.{gate_id}")
    return _convert(table, Settings, "uok")


def _convert(raw: Any, schema: type[T], prefix: str) -> T:
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        raise _config_error(exc, raw, schema, prefix) from None


def _config_error(exc: msgspec.ValidationError, raw: Any, schema: type, prefix: str) -> ConfigError:
    m = _AT.match(str(exc))
    assert m is not None
    problem, path = m["problem"], m["path"] or ""
    steps = [name or int(index) for name, index in _STEP.findall(path)]
    key = prefix + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
    unknown = _UNKNOWN.match(problem)
    if unknown is not None:
        return _unknown_key(
            key, unknown["field"], _value_at(raw, [*steps, unknown["field"]]), _fields_at(schema, steps)
        )
    if problem.startswith("command: "):  # raised by GateDefaults.__post_init__
        key, problem = f"{key}.command", problem.removeprefix("command: ")
    value = _value_at(raw, steps)
    choices = _choices_at(schema, steps)
    if problem.startswith("Invalid enum value") and choices:
        problem = f"must be one of {', '.join(map(str, choices))}"
    elif f"<= {FLOAT_MAX!r}" in problem:
        problem = "must be a finite number"
    problem = problem[:1].lower() + problem[1:]
    problem = problem.replace("`object`", "a table").replace("`array`", "an array")
    if value is not _MISSING and not isinstance(value, dict) and "got" not in problem:
        problem += f", got {value!r}"
    return ConfigError(key, problem)


def _unknown_key(at: str, field: str, value: Any, allowed: list[str]) -> ConfigError:
    hint = f"allowed: {', '.join(allowed)}" if allowed else "no keys allowed"
    if isinstance(value, dict) and value:  # a whole section uok does not have: name its first key
        first = next(iter(value))
        return ConfigError(f"{at}.{field}.{first}", f"unknown key: [{at}.{field}] is not a uok section ({hint})")
    return ConfigError(f"{at}.{field}", f"unknown key ({hint})")


def _value_at(raw: Any, steps: list[str | int]) -> Any:
    for step in steps:
        try:
            raw = raw[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw


def _type_at(schema: Any, steps: list[str | int]) -> msgspec.inspect.Type | None:
    """The schema's type at ``steps`` (a Struct field, a dict value, a list item)."""
    info: msgspec.inspect.Type | None = msgspec.inspect.type_info(schema)
    for step in steps:
        if isinstance(info, msgspec.inspect.UnionType):
            info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
        if isinstance(info, msgspec.inspect.StructType):
            info = next((f.type for f in info.fields if f.name == step), None)
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
            info = info.item_type
        else:
            return None
    return info


def _fields_at(schema: Any, steps: list[str | int]) -> list[str]:
    """The keys the Struct at ``steps`` allows ([] if it is not a Struct)."""
    info = _type_at(schema, steps)
    return sorted(f.name for f in info.fields) if isinstance(info, msgspec.inspect.StructType) else []


def _choices_at(schema: Any, steps: list[str | int]) -> tuple[Any, ...]:
    """The values a Literal at ``steps`` allows (() if it is not one)."""
    info = _type_at(schema, steps)
    return info.values if isinstance(info, msgspec.inspect.LiteralType) else ()
