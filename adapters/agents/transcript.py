"""An agent turn's transcript, read back from its ``AgentStep`` events
(``uok logs WHAT --transcript``; docs/agents.md): one line per step, a long
text whole from its blob, everything as recorded (redacted)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from uok.domain import events as ev
from uok.domain.log import codec


def transcript(log: Any, blobs: Path, turns: Iterable[Any]) -> Iterator[str]:
    """Lines for each of ``turns`` (objects with ``turn_id``, ``unit_id``, ``attempt``)."""
    chosen = {t.turn_id: t for t in turns}
    steps: dict[str, list[ev.AgentStep]] = {tid: [] for tid in chosen}
    for _, e in log.events(only=frozenset({codec.topic_of(ev.AgentStep)})):
        if isinstance(e, ev.AgentStep) and e.turn_id in steps:
            steps[e.turn_id].append(e)
    for turn_id, t in chosen.items():
        found = steps[turn_id]
        agent = found[0].agent if found else "no agent steps"
        yield f"== {t.unit_id} attempt {t.attempt} ({turn_id}, {agent})"
        for s in found:
            yield _line(s, blobs)


def _line(s: ev.AgentStep, blobs: Path) -> str:
    text = _whole(s, blobs)
    head = f"[{s.seq}] {s.kind}"
    if s.kind == "tool_call":
        body = f"{s.tool} {s.args}" + (f"  files: {', '.join(s.files)}" if s.files else "")
    elif s.kind == "tool_result":
        took = f", {s.duration_ms} ms" if s.duration_ms is not None else ""
        body = f"{s.tool} ({'error' if s.is_error else 'ok'}{took}) {text}"
    elif s.kind == "usage" and s.usage is not None:
        u = s.usage
        body = f"{u.model}: {u.input_tokens} in, {u.output_tokens} out, cache {u.cache_read_tokens} read / {u.cache_write_tokens} written"
    elif s.kind == "result":
        cost = f" ${s.cost_usd:.4f}" if s.cost_usd is not None else ""
        body = f"{s.subtype}{cost}{' (error)' if s.is_error else ''} {text}"
    elif s.kind == "session":
        body = f"{s.session_id} {text}"
    elif s.kind == "file_change":
        body = ", ".join(s.files)
    else:
        body = (f"{s.subtype}: " if s.subtype else "") + text
    return f"{head}  {body.strip()}"


def _whole(s: ev.AgentStep, blobs: Path) -> str:
    if not s.blob:
        return s.text
    try:
        return (blobs / s.blob[:2] / s.blob).read_text(encoding="utf-8")
    except OSError:
        return s.text + f" … (blob {s.blob} not found)"
