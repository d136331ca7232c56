"""``generic-jsonl``: uok's own JSON lines, for any tool (docs/agents.md).

A task runs its own ``command`` (required) and prints, on stdout, one JSON
object per line whose ``type`` is a step kind; anything else on stdout is
kept as an ``unknown`` step. The prompt is on stdin and in the file named by
``UOK_PROMPT_FILE``::

    {"type": "session", "session_id": "s-1", "model": "claude-sonnet-4-6"}
    {"type": "message", "text": "I will add the test first."}
    {"type": "tool_call", "id": "t1", "name": "write", "args": {"path": "a.py"}, "files": ["a.py"]}
    {"type": "tool_result", "id": "t1", "is_error": false, "text": "ok", "duration_ms": 12}
    {"type": "file_change", "files": ["a.py", "b.py"]}
    {"type": "usage", "model": "claude-sonnet-4-6", "input_tokens": 1200, "output_tokens": 300,
     "cache_read_tokens": 0, "cache_write_tokens": 0}
    {"type": "result", "status": "success", "text": "done", "cost_usd": 0.0081}

A ``result`` with ``"status": "error"`` fails the turn with its
``failure_class`` (default ``execution``, retried; ``policy`` is not
retried) and ``text`` as the reason. A stream without a ``result`` line
fails, even with exit code 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uok.adapters.agents.base import AgentAdapter, Draft, as_float, as_int, summarize
from uok.domain.events import AgentUsage

_SIMPLE = ("message", "thinking", "error")


class GenericJsonl(AgentAdapter):
    name: ClassVar[str] = "generic-jsonl"
    executable: ClassVar[tuple[str, ...]] = ()
    needs_command: ClassVar[bool] = True

    def parse(self, obj: Any) -> list[Draft]:
        if not isinstance(obj, dict):
            return [Draft(kind="unknown", subtype="not-an-object", text=summarize(obj, 2000))]
        kind = obj.get("type")
        raw_text = obj.get("text")
        text = raw_text if isinstance(raw_text, str) else ""
        if kind == "session":
            self.session_id = str(obj.get("session_id", ""))
            return [Draft(kind="session", session_id=self.session_id, text=str(obj.get("model", "")))]
        if kind in _SIMPLE:
            return [Draft(kind=kind, text=text, is_error=kind == "error")]
        if kind == "tool_call":
            return [
                Draft(
                    kind="tool_call",
                    tool=str(obj.get("name", "")),
                    tool_id=str(obj.get("id", "")),
                    args=summarize(obj.get("args", "")),
                    files=_files(obj),
                )
            ]
        if kind == "tool_result":
            duration = obj.get("duration_ms")
            return [
                Draft(
                    kind="tool_result",
                    tool_id=str(obj.get("id", "")),
                    tool=str(obj.get("name", "")),
                    is_error=obj.get("is_error") is True,
                    text=text,
                    duration_ms=as_int(duration) if duration is not None else None,
                )
            ]
        if kind == "file_change":
            return [Draft(kind="file_change", files=_files(obj))]
        if kind == "usage":
            return [Draft(kind="usage", usage=self.usage(obj))]
        if kind == "result":
            status = obj.get("status", "success")
            self.result = Draft(
                kind="result",
                subtype=str(obj.get("failure_class", "error")) if status == "error" else "success",
                is_error=status == "error",
                text=text,
                cost_usd=as_float(obj.get("cost_usd")),
                session_id=str(obj.get("session_id", "")) or self.session_id,
            )
            return [self.result]
        return [Draft(kind="unknown", subtype=str(kind or ""), text=summarize(obj, 2000))]

    def usage(self, obj: Any) -> AgentUsage | None:
        return AgentUsage(
            model=str(obj.get("model", "")),
            input_tokens=as_int(obj.get("input_tokens")),
            output_tokens=as_int(obj.get("output_tokens")),
            cache_read_tokens=as_int(obj.get("cache_read_tokens")),
            cache_write_tokens=as_int(obj.get("cache_write_tokens")),
        )

    def failure(self, result: Draft) -> tuple[str, str]:
        return result.subtype if result.subtype != "error" else "execution", result.text[:300] or "error"


def _files(obj: dict[str, Any]) -> tuple[str, ...]:
    files = obj.get("files", [])
    return tuple(str(f) for f in files) if isinstance(files, list) else ()
