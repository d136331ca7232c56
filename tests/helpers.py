"""Shared test helpers: a stepping clock and small plan builders."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta


class StepClock:
    """A deterministic clock: each call advances by ``step`` seconds."""

    def __init__(self, start: datetime | None = None, step: float = 0.5):
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def plan_toml(*slices: tuple[str, list[dict]], plan_id: str = "t", milestone: str = "M1") -> str:
    """A one-milestone plan; each slice is (slice_id, [task dicts])."""
    lines = [f'[plan]\nid = "{plan_id}"\n', f'[[milestones]]\nid = "{milestone}"\n']
    for sid, tasks in slices:
        lines.append(f'[[milestones.slices]]\nid = "{sid}"\n')
        for t in tasks:
            lines.append("[[milestones.slices.tasks]]")
            for k, v in t.items():
                lines.append(f"{k} = {_toml(v)}")
            lines.append("")
    return textwrap.dedent("\n".join(lines))


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(v)
