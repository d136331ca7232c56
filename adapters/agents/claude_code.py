"""``claude-code``: Anthropic's Claude Code CLI, ``claude -p --output-format
stream-json --verbose`` (docs/agents.md).

The stream is one JSON object per line, as documented by Anthropic
("Run Claude Code programmatically", headless mode: ``stream-json`` needs
``--verbose`` with ``-p``) and as the Agent SDK parses it
(anthropics/claude-agent-sdk-python, ``src/claude_agent_sdk/_internal/message_parser.py``):

* ``{"type": "system", "subtype": "init", "session_id", "model", "tools", ...}``;
* ``{"type": "assistant", "message": {"id", "model", "content": [blocks],
  "usage": {"input_tokens", "output_tokens", "cache_creation_input_tokens",
  "cache_read_input_tokens"}}, "session_id", "parent_tool_use_id"}`` where a
  block is ``text``, ``thinking`` or ``tool_use`` (``id``, ``name``,
  ``input``); one API message may arrive as several events sharing its id
  and usage (counted once here);
* ``{"type": "user", "message": {"content": [{"type": "tool_result",
  "tool_use_id", "content", "is_error"}]}}``;
* ``{"type": "result", "subtype": "success" | "error_max_turns" |
  "error_during_execution" | "error_max_budget_usd" |
  "error_max_structured_output_retries", "is_error", "result",
  "session_id", "num_turns", "total_cost_usd", "usage", "modelUsage",
  "stop_reason", "api_error_status"}``.

Anything else (other ``system`` subtypes, ``stream_event``,
``rate_limit_event`` …) is kept as an ``unknown`` step.

Outcome mapping (the agent's terminal state → uok failure class):

=================================== ============= ===========
result                              class         retried
=================================== ============= ===========
``success``                         (success)
``error_max_turns``                 ``timeout``   yes
``error_during_execution``          ``execution`` yes
``error_max_structured_output_...`` ``execution`` yes
``error_max_budget_usd``            ``policy``    no
``success`` + ``is_error`` (API     ``execution`` yes
error: overload, rate limit, 5xx)
API error 400/401/403/404/413       ``policy``    no
(invalid request, auth)
``stop_reason`` ``refusal``         ``policy``    no
=================================== ============= ===========
"""

from __future__ import annotations

from typing import Any, ClassVar

from uok.adapters.agents.base import AgentAdapter, Draft, as_float, as_int, summarize, text_of
from uok.domain.events import AgentUsage
from uok.domain.plan import AgentSpec

# Claude Code's file-editing tools and the input field naming the file.
_FILE_TOOLS = {"Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path", "NotebookEdit": "notebook_path"}
_NOT_RETRIED_STATUS = frozenset({400, 401, 403, 404, 413})
_CLASSES = {
    "error_max_turns": "timeout",
    "error_max_budget_usd": "policy",
    "error_during_execution": "execution",
    "error_max_structured_output_retries": "execution",
}


class ClaudeCode(AgentAdapter):
    name: ClassVar[str] = "claude-code"
    executable: ClassVar[tuple[str, ...]] = ("claude",)
    options: ClassVar[dict[str, str]] = {
        "max_turns": "--max-turns N",
        "max_budget_usd": '--max-budget-usd USD, or "remaining": the unit\'s remaining budget',
        "permission_mode": "--permission-mode MODE",
        "allowed_tools": "--allowedTools a,b",
        "disallowed_tools": "--disallowedTools a,b",
        "append_system_prompt": "--append-system-prompt TEXT",
        "resume": "--resume SESSION_ID",
        "resume_on_retry": "a retry resumes the session of the attempt before it (true)",
        "extra_args": "more arguments, verbatim",
    }

    def __init__(self, spec: AgentSpec):
        super().__init__(spec)
        self._usage_seen: set[str] = set()  # message ids whose usage was counted
        self._stop_reason = ""  # the result's, for the outcome mapping (refusal)
        self._api_status = 0  # the result's API error status, if any

    def arguments(self) -> list[str]:
        o = self.spec.options
        args = ["-p", "--output-format", "stream-json", "--verbose"]
        if self.spec.model:
            args += ["--model", self.spec.model]
        if "max_turns" in o:
            args += ["--max-turns", str(o["max_turns"])]
        cap = o.get("max_budget_usd")
        if cap == "remaining" and self.budget is not None:
            args += ["--max-budget-usd", f"{self.budget:.6f}"]  # what uok's cost guard still allows
        elif cap is not None and cap != "remaining":
            args += ["--max-budget-usd", str(cap)]
        if "permission_mode" in o:
            args += ["--permission-mode", str(o["permission_mode"])]
        for key, flag in (("allowed_tools", "--allowedTools"), ("disallowed_tools", "--disallowedTools")):
            if key in o:
                value = o[key]
                args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
        if "append_system_prompt" in o:
            args += ["--append-system-prompt", str(o["append_system_prompt"])]
        if self.resumed():
            args += ["--resume", self.resumed()]
        return args + [str(a) for a in o.get("extra_args", [])]

    # ---------------------------------------------------------------- stream parser

    def parse(self, obj: Any) -> list[Draft]:
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "system" and obj.get("subtype") == "init":
            self.session_id = str(obj.get("session_id", ""))
            return [Draft(kind="session", session_id=self.session_id, text=str(obj.get("model", "")))]
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "user":
            return self._user(obj)
        if kind == "result":
            return [self._result(obj)]
        sub = f"{kind}:{obj.get('subtype')}" if kind == "system" else str(kind or "")
        return [Draft(kind="unknown", subtype=sub, text=summarize(obj, 2000))]

    def _assistant(self, obj: dict[str, Any]) -> list[Draft]:
        message = obj.get("message") or {}
        out: list[Draft] = []
        for block in message.get("content") or []:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                out.append(Draft(kind="message", text=str(block.get("text", ""))))
            elif btype == "thinking":
                out.append(Draft(kind="thinking", text=str(block.get("thinking", ""))))
            elif btype in ("tool_use", "server_tool_use"):
                name, args = str(block.get("name", "")), block.get("input") or {}
                field = _FILE_TOOLS.get(name)
                path = args.get(field) if field and isinstance(args, dict) else None
                out.append(
                    Draft(
                        kind="tool_call",
                        tool=name,
                        tool_id=str(block.get("id", "")),
                        args=summarize(args),
                        files=(str(path),) if path else (),
                    )
                )
            else:
                out.append(Draft(kind="unknown", subtype=f"assistant:{btype}", text=summarize(block, 2000)))
        usage = self.usage(obj)
        if usage is not None:
            out.append(Draft(kind="usage", usage=usage))
        return out

    def _user(self, obj: dict[str, Any]) -> list[Draft]:
        content = (obj.get("message") or {}).get("content")
        out = []
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                out.append(
                    Draft(
                        kind="tool_result",
                        tool_id=str(block.get("tool_use_id", "")),
                        is_error=block.get("is_error") is True,
                        text=text_of(block.get("content")),
                    )
                )
        return out  # a user message without tool results (the prompt echoed) is not a step

    def _result(self, obj: dict[str, Any]) -> Draft:
        status = obj.get("api_error_status")
        self._stop_reason = str(obj.get("stop_reason") or "")
        self._api_status = as_int(status) if status is not None else 0
        self.result = Draft(
            kind="result",
            subtype=str(obj.get("subtype", "")),
            is_error=obj.get("is_error") is True or str(obj.get("subtype", "success")) != "success",
            text=str(obj.get("result") or "") or "; ".join(str(e) for e in obj.get("errors") or []),
            cost_usd=as_float(obj.get("total_cost_usd")),
            model_costs=_model_costs(obj.get("modelUsage")),
            session_id=str(obj.get("session_id", "")),
        )
        return self.result

    # ---------------------------------------------------------------- usage extractor

    def usage(self, obj: Any) -> AgentUsage | None:
        message = obj.get("message") or {}
        u = message.get("usage")
        if not isinstance(u, dict):
            return None
        mid = str(message.get("id", ""))
        if mid:
            if mid in self._usage_seen:
                return None  # the same API message split over several events
            self._usage_seen.add(mid)
        return AgentUsage(
            model=str(message.get("model", "")),
            input_tokens=as_int(u.get("input_tokens")),
            output_tokens=as_int(u.get("output_tokens")),
            cache_read_tokens=as_int(u.get("cache_read_input_tokens")),
            cache_write_tokens=as_int(u.get("cache_creation_input_tokens")),
        )

    # ---------------------------------------------------------------- outcome mapping

    def failure(self, result: Draft) -> tuple[str, str]:
        reason = (result.text or result.subtype)[:300]
        if self._stop_reason == "refusal":
            return "policy", f"refused: {reason}"
        if self._api_status in _NOT_RETRIED_STATUS:
            return "policy", f"API error {self._api_status}: {reason}"
        return _CLASSES.get(result.subtype, "execution"), f"{result.subtype}: {reason}"


def _model_costs(model_usage: Any) -> dict[str, float]:
    """``modelUsage``'s ``costUSD`` per model (the result's total, split)."""
    out: dict[str, float] = {}
    for model, u in (model_usage or {}).items() if isinstance(model_usage, dict) else ():
        cost = as_float(u.get("costUSD")) if isinstance(u, dict) else None
        if cost is not None:
            out[str(model)] = cost
    return out
