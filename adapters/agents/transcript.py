"""An agent turn's transcript, read back from its ``AgentStep`` events
(``uok logs WHAT --transcript [--follow]``; docs/agents.md): one line per
step, a long text whole from its blob, everything as recorded (redacted)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from uok.domain import events as ev
from uok.domain.log import codec


def transcript(log: Any, blobs: Path, turns: Iterable[Any]) -> Iterator[str]:
    """Lines for each of ``turns`` (objects with ``turn_id``, ``unit_id``, ``attempt``)."""
    printer = Transcript(log, blobs, turns)
    yield from printer.new_lines()
    yield from printer.empty_turns()


class Transcript:
    """The steps of some turns, read from the log as far as it goes; read
    again, only what was appended since (``uok logs --transcript --follow``)."""

    def __init__(self, log: Any, blobs: Path, turns: Iterable[Any]):
        self.log, self.blobs = log, blobs
        self.turns = {t.turn_id: t for t in turns}
        self.seen = 0  # log position read up to
        self.shown: set[str] = set()  # turns whose header was printed

    def new_lines(self) -> Iterator[str]:
        """Steps appended since the last call, each turn's header before its first."""
        for position, e in self.log.events(self.seen, only=_TOPICS):
            self.seen = position
            if not isinstance(e, ev.AgentStep) or e.turn_id not in self.turns:
                continue
            if e.turn_id not in self.shown:
                self.shown.add(e.turn_id)
                yield self._header(e.turn_id, e.agent)
            yield _line(e, self.blobs)

    def empty_turns(self) -> Iterator[str]:
        """Headers of the turns that recorded no step (not an agent task, or not started yet)."""
        for turn_id in self.turns:
            if turn_id not in self.shown:
                yield self._header(turn_id, "no agent steps")

    def _header(self, turn_id: str, agent: str) -> str:
        t = self.turns[turn_id]
        return f"== {t.unit_id} attempt {t.attempt} ({turn_id}, {agent})"


_TOPICS = frozenset({codec.topic_of(ev.AgentStep)})


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
