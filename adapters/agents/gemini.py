"""``gemini``: Google's Gemini CLI, headless, ``gemini --output-format
stream-json`` with the prompt on stdin (docs/agents.md).

The stream is JSON lines as documented in google-gemini/gemini-cli
``docs/cli/headless.md`` ("Streaming JSON output") and typed in
``packages/core/src/output/types.ts`` (``JsonStreamEventType``):

* ``{"type": "init", "session_id", "model", "timestamp"}``;
* ``{"type": "message", "role": "user" | "assistant", "content", "delta"}``
  (``delta: true``: a chunk of the assistant's text; consecutive chunks
  are one ``message`` step here);
* ``{"type": "tool_use", "tool_name", "tool_id", "parameters"}``;
* ``{"type": "tool_result", "tool_id", "status": "success" | "error",
  "output", "error": {"type", "message"}}``;
* ``{"type": "error", "severity": "warning" | "error", "message"}``;
* ``{"type": "result", "status": "success" | "error", "error": {"type",
  "message"}, "stats": {"total_tokens", "input_tokens", "output_tokens",
  "cached", "input", "duration_ms", "tool_calls"}}`` (``input`` and
  ``cached`` break ``input_tokens`` down).

Gemini reports no cost: its usage is priced with the cost table under the
model its ``init`` named (else the task's ``model``).

Outcome mapping (the documented headless exit codes, and the result's
error type):

============================================ ============= =======
terminal state                               class         retried
============================================ ============= =======
``result`` ``success``                       (success)
exit 53, turn limit exceeded                 ``timeout``   yes
exit 41 / 42 / 52: authentication, input,    ``policy``    no
configuration error
exit 54 (fatal tool error), other errors     ``execution`` yes
============================================ ============= =======
"""

from __future__ import annotations

from typing import Any, ClassVar

from uok.adapters.agents.base import AgentAdapter, Draft, as_int, summarize
from uok.domain.events import AgentOutcome, AgentUsage
from uok.domain.plan import AgentSpec

_POLICY_EXITS = {41: "authentication error", 42: "input error", 52: "configuration error"}


class Gemini(AgentAdapter):
    name: ClassVar[str] = "gemini"
    executable: ClassVar[tuple[str, ...]] = ("gemini",)
    options: ClassVar[dict[str, str]] = {
        "approval_mode": "--approval-mode MODE (default, auto_edit, yolo)",
        "yolo": "--yolo (true)",
        "sandbox": "--sandbox (true)",
        "allowed_tools": "--allowed-tools a,b",
        "include_directories": "--include-directories a,b",
        "resume": "--resume SESSION",
        "resume_on_retry": "a retry resumes the session of the attempt before it (true)",
        "extra_args": "more arguments, verbatim",
    }

    def __init__(self, spec: AgentSpec):
        super().__init__(spec)
        self.model = spec.model
        self._delta: list[str] = []  # assistant text chunks not yet a step
        self._exit: int | None = None

    def arguments(self) -> list[str]:
        o = self.spec.options
        args = ["--output-format", "stream-json"]
        if self.spec.model:
            args += ["--model", self.spec.model]
        if "approval_mode" in o:
            args += ["--approval-mode", str(o["approval_mode"])]
        for key in ("yolo", "sandbox"):
            if o.get(key) is True:
                args.append(f"--{key}")
        for key, flag in (("allowed_tools", "--allowed-tools"), ("include_directories", "--include-directories")):
            if key in o:
                value = o[key]
                args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
        if self.resumed():
            args += ["--resume", self.resumed()]
        return args + [str(a) for a in o.get("extra_args", [])]

    # ---------------------------------------------------------------- stream parser

    def parse(self, obj: Any) -> list[Draft]:
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "message" and obj.get("role") == "assistant":
            self._delta.append(str(obj.get("content", "")))
            return [] if obj.get("delta") is True else self.finish()
        out = self.finish()  # any other event ends the assistant's message
        if kind == "init":
            self.session_id = str(obj.get("session_id", ""))
            self.model = str(obj.get("model", "")) or self.model
            out.append(Draft(kind="session", session_id=self.session_id, text=self.model))
        elif kind == "message":
            pass  # the user's prompt, echoed: not a step
        elif kind == "tool_use":
            out.append(
                Draft(
                    kind="tool_call",
                    tool=str(obj.get("tool_name", "")),
                    tool_id=str(obj.get("tool_id", "")),
                    args=summarize(obj.get("parameters") or {}),
                    files=_files(obj.get("parameters")),
                )
            )
        elif kind == "tool_result":
            error = obj.get("error") or {}
            text = str(error.get("message", "")) if error else str(obj.get("output", ""))
            out.append(
                Draft(
                    kind="tool_result",
                    tool_id=str(obj.get("tool_id", "")),
                    is_error=obj.get("status") == "error",
                    text=text,
                )
            )
        elif kind == "error":
            out.append(
                Draft(
                    kind="error",
                    text=str(obj.get("message", "")),
                    subtype=str(obj.get("severity", "")),
                    is_error=obj.get("severity") != "warning",
                )
            )
        elif kind == "result":
            usage = self.usage(obj)
            if usage is not None:
                out.append(Draft(kind="usage", usage=usage))
            error = obj.get("error") or {}
            failed = obj.get("status") != "success"
            self.result = Draft(
                kind="result",
                subtype=str(error.get("type", "")) or str(obj.get("status", "")),
                is_error=failed,
                text=str(error.get("message", "")),
                session_id=self.session_id,
            )
            out.append(self.result)
        else:
            out.append(Draft(kind="unknown", subtype=str(kind or ""), text=summarize(obj, 2000)))
        return out

    def finish(self) -> list[Draft]:
        if not self._delta:
            return []
        text, self._delta = "".join(self._delta), []
        return [Draft(kind="message", text=text)]

    # ---------------------------------------------------------------- usage extractor

    def usage(self, obj: Any) -> AgentUsage | None:
        stats = obj.get("stats")
        if not isinstance(stats, dict):
            return None
        cached = as_int(stats.get("cached"))
        uncached = as_int(stats["input"]) if "input" in stats else max(0, as_int(stats.get("input_tokens")) - cached)
        return AgentUsage(
            model=self.model or "gemini",
            input_tokens=uncached,
            output_tokens=as_int(stats.get("output_tokens")),
            cache_read_tokens=cached,
        )

    # ---------------------------------------------------------------- outcome mapping

    def outcome(self, exit_code: int | None) -> AgentOutcome:
        self._exit = exit_code
        return super().outcome(exit_code)

    def failure(self, result: Draft) -> tuple[str, str]:
        reason = (result.text or result.subtype)[:300]
        if self._exit in _POLICY_EXITS:
            return "policy", f"{_POLICY_EXITS[self._exit]}: {reason}"
        if self._exit == 53 or "turnlimit" in result.subtype.lower().replace("_", ""):
            return "timeout", f"turn limit exceeded: {reason}"
        return "execution", f"{result.subtype}: {reason}"


def _files(params: Any) -> tuple[str, ...]:
    if not isinstance(params, dict):
        return ()
    path = params.get("file_path") or params.get("absolute_path")
    return (str(path),) if isinstance(path, str) and path else ()
