"""Field-by-field differences between two plain values (dicts, lists,
scalars), as a list of ``path: expected -> actual``. Used to show exactly
how a replayed decision differs from the recorded one, and how two states
differ."""

from __future__ import annotations

from typing import Any

import msgspec
from uok.domain.events import Event
from uok.domain.log import codec


class FieldDiff(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # e.g. "unit_id", "graph.order[2]", "data.attempt"
    expected: Any = None
    actual: Any = None
    missing: str = ""  # "expected" or "actual" when the field exists on one side only


def builtins(value: Any) -> Any:
    """A Struct (or anything msgspec can encode) as dicts, lists and scalars;
    datetimes become ISO strings so the result prints and serialises.

    Every field is there, defaults included: events encode compactly
    (``omit_defaults``), and a diff must show ``failure_class: none ->
    execution``, not a field missing on one side."""
    if isinstance(value, Event):
        return codec.to_builtins(value)
    return msgspec.to_builtins(value)


def diff(expected: Any, actual: Any, path: str = "", limit: int = 50) -> list[FieldDiff]:
    out: list[FieldDiff] = []
    _walk(builtins(expected), builtins(actual), path, out, limit)
    return out


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _walk(a: Any, b: Any, path: str, out: list[FieldDiff], limit: int) -> None:
    if len(out) >= limit or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                out.append(FieldDiff(path=_join(path, k), expected=a[k], missing="actual"))
            elif k not in a:
                out.append(FieldDiff(path=_join(path, k), actual=b[k], missing="expected"))
            else:
                _walk(a[k], b[k], _join(path, k), out, limit)
            if len(out) >= limit:
                return
        return
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        for i in range(max(len(a), len(b))):
            if i >= len(b):
                out.append(FieldDiff(path=_join(path, i), expected=a[i], missing="actual"))
            elif i >= len(a):
                out.append(FieldDiff(path=_join(path, i), actual=b[i], missing="expected"))
            else:
                _walk(a[i], b[i], _join(path, i), out, limit)
            if len(out) >= limit:
                return
        return
    out.append(FieldDiff(path=path or "(value)", expected=a, actual=b))
