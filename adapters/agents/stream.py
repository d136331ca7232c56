"""An agent's stdout, read as it streams: every byte still goes to the
turn's output file; every complete line becomes steps (docs/agents.md).

:class:`AgentStream` sits between the executor's pipe and the stdout
:class:`~uok.adapters.outputsink.OutputSink`. For each complete line it
asks the turn's adapter for steps, then, the same for every agent:

* tolerates what it cannot read: a line that is not JSON, a type the
  adapter does not know, a parser error, a line over :data:`MAX_LINE`, the
  last line cut off mid-way when the agent died: each is kept as an
  ``unknown`` step (``subtype`` says why) with its text, never dropped and
  never fatal;
* redacts every text it records with the run's one redaction pass;
* keeps a text longer than :data:`INLINE` out of line, whole, as a
  content-addressed blob (``<logs>/blobs/<sha[:2]>/<sha256>``), the event
  holding its beginning, its size and its hash (``uok logs`` shows it);
* numbers the steps (``seq``) and measures a tool call's duration from its
  call to its result when the agent does not say;
* hands each step to ``on_step`` at once (the runner records it as an
  ``AgentStep`` observation while the agent is still running).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from uok.adapters.agents.base import AgentAdapter, Draft
from uok.adapters.outputsink import KeptOutput, OutputSink
from uok.domain.events import AgentOutcome, AgentUsage, ModelUsage, UsagePrice

MAX_LINE = 8 * 1024 * 1024  # bytes of one line parsed; past it the line is an ``unknown`` step
INLINE = 1000  # characters of a text kept inside its event; the whole text goes to a blob
NAME_LIMIT = 300  # characters of a tool name, id, session id, subtype or file path kept
MAX_FILES = 100  # files one step may name

StepSink = Callable[[dict[str, Any]], None]


class BlobStore:
    """Content-addressed files: the same text is stored once, by its SHA-256."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.path(sha)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f"{sha}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha


class AgentStream:
    """The tap on one agent turn's stdout (see the module docstring)."""

    def __init__(
        self,
        sink: OutputSink,
        adapter: AgentAdapter,
        *,
        redact: Callable[[str], str],
        blobs: BlobStore,
        on_step: StepSink | None,
    ):
        self.sink, self.adapter, self.redact, self.blobs = sink, adapter, redact, blobs
        self.on_step = on_step or (lambda _step: None)
        self._buf = bytearray()
        self._skipping = False  # inside a line longer than MAX_LINE
        self._calls: dict[str, tuple[str, float]] = {}  # tool id -> (tool name, when it was called)
        self.seq = 0

    # ------------------------------------------------------------------ the sink's interface

    def write(self, data: bytes) -> None:
        self.sink.write(data)
        self._buf += data
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            self._line(line)
        if len(self._buf) > MAX_LINE and not self._skipping:
            self._emit(Draft(kind="unknown", subtype="line-too-long", text=self._buf[:INLINE].decode(errors="replace")))
            self._buf.clear()
            self._skipping = True
        elif self._skipping:
            self._buf.clear()

    def close(self) -> KeptOutput:
        """Parse a last line cut off mid-way (kept as ``unknown``), close the file."""
        if self._buf.strip() and not self._skipping:
            rest = bytes(self._buf)
            try:
                obj = msgspec.json.decode(rest)
            except msgspec.DecodeError:
                for draft in self.adapter.finish():  # what the agent said before it was cut off
                    self._emit(draft)
                self._emit(Draft(kind="unknown", subtype="truncated", text=rest.decode("utf-8", errors="replace")))
            else:
                self._parsed(obj)  # a complete object without its newline: read it
        self._buf.clear()
        for draft in self.adapter.finish():
            self._emit(draft)
        return self.sink.close()

    def outcome(self, exit_code: int | None) -> AgentOutcome:
        return self.adapter.outcome(exit_code)

    # ------------------------------------------------------------------ lines to steps

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            obj = msgspec.json.decode(line)
        except msgspec.DecodeError:
            self._emit(Draft(kind="unknown", subtype="not-json", text=line.decode("utf-8", errors="replace")))
            return
        self._parsed(obj)

    def _parsed(self, obj: Any) -> None:
        try:
            drafts = self.adapter.parse(obj)
        except Exception as exc:  # an adapter's bug must not lose the line nor stop the turn  # noqa: BLE001
            raw = msgspec.json.encode(obj).decode("utf-8", errors="replace")
            drafts = [Draft(kind="unknown", subtype=f"parse-error: {type(exc).__name__}: {exc}"[:200], text=raw)]
        for draft in drafts:
            self._emit(draft)

    def _emit(self, d: Draft) -> None:
        now = time.monotonic()
        if d.kind == "tool_call" and d.tool_id:
            self._calls[d.tool_id] = (d.tool, now)
        elif d.kind == "tool_result" and d.tool_id in self._calls:
            name, started = self._calls.pop(d.tool_id)
            d.tool = d.tool or name
            if d.duration_ms is None:
                d.duration_ms = int((now - started) * 1000)
        if d.session_id:
            self.adapter.session_id = self.adapter.session_id or d.session_id
        step = msgspec.structs.asdict(d)
        for key in ("tool", "tool_id", "session_id", "subtype"):  # names, not texts: bounded, redacted
            step[key] = self.redact(step[key][:NAME_LIMIT]) if step[key] else ""
        step["files"] = tuple(self.redact(f[:NAME_LIMIT]) for f in d.files[:MAX_FILES])
        if d.kind == "usage" and d.usage is not None:
            step["price"] = _price(d.usage)  # the shell's lookup, recorded: replay prices the same
        step["args"] = self.redact(d.args) if d.args else ""
        step.update(self._text(d.text))
        step["agent"] = self.adapter.name
        step["seq"] = self.seq
        self.seq += 1
        self.adapter.steps = self.seq
        with contextlib.suppress(Exception):  # recording a step never breaks the pump
            self.on_step(step)

    def _text(self, text: str) -> dict[str, Any]:
        if not text:
            return {"text": "", "blob": "", "text_size": 0}
        text = self.redact(text)
        if len(text) <= INLINE:
            return {"text": text, "blob": "", "text_size": len(text)}
        sha = self.blobs.put(text.encode("utf-8", errors="replace"))
        return {"text": text[:INLINE], "blob": sha, "text_size": len(text)}


def _price(u: AgentUsage) -> UsagePrice | None:
    """A usage step's price in genai-prices' offline table (cache tokens at
    their own rates), as :mod:`uok.adapters.usage` prices a task's usage lines."""
    from uok.adapters.usage import price_usage

    usage = ModelUsage(
        model=u.model,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
    )
    return price_usage(usage).price
