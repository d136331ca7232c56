"""``codex``: OpenAI's Codex CLI, ``codex exec --json -`` (docs/agents.md).

The stream is JSON lines as documented in openai/codex ``docs/exec.md``
("JSON output mode") and typed in ``codex-rs/exec/src/exec_events.rs``
(``ThreadEvent``, ``ThreadItem``):

* ``{"type": "thread.started", "thread_id"}`` (the session id, for
  ``codex exec resume``);
* ``{"type": "turn.started"}``;
* ``{"type": "item.started" | "item.updated" | "item.completed", "item":
  {"id", "type", ...}}`` where ``item.type`` is ``agent_message`` (``text``),
  ``reasoning`` (``text``), ``command_execution`` (``command``,
  ``aggregated_output``, ``exit_code``, ``status``), ``file_change``
  (``changes``: ``[{"path", "kind"}]``, ``status``), ``mcp_tool_call``
  (``server``, ``tool``, ``arguments``, ``result``, ``error``, ``status``),
  ``web_search`` (``query``), ``todo_list`` (``items``), ``error``
  (``message``);
* ``{"type": "turn.completed", "usage": {"input_tokens",
  "cached_input_tokens", "output_tokens"}}`` (cached input is part of the
  input, as in OpenAI's usage), ``{"type": "turn.failed", "error":
  {"message"}}``, ``{"type": "error", "message"}``.

The prompt is read from stdin (the ``-`` argument). Codex reports no cost:
its usage is priced with the cost table under the task's ``model``.

Outcome mapping:

========================================== ============= =======
terminal event                             class         retried
========================================== ============= =======
``turn.completed``                         (success)
``turn.failed`` / ``error``: rate limit,   ``execution`` yes
overload, stream disconnected, 5xx, other
``turn.failed`` / ``error``: invalid       ``policy``    no
request, unauthorized/401/403, refused
========================================== ============= =======
"""

from __future__ import annotations

from typing import Any, ClassVar

from uok.adapters.agents.base import AgentAdapter, Draft, as_int, summarize, text_of
from uok.domain.events import AgentUsage
from uok.domain.plan import AgentSpec

_NOT_RETRIED = ("invalid_request", "invalid request", "unauthorized", "401", "403", "refus", "not supported")
_TOOL_ITEMS = frozenset({"command_execution", "mcp_tool_call", "web_search"})


class Codex(AgentAdapter):
    name: ClassVar[str] = "codex"
    executable: ClassVar[tuple[str, ...]] = ("codex",)
    options: ClassVar[dict[str, str]] = {
        "sandbox": "--sandbox MODE (read-only, workspace-write, danger-full-access)",
        "full_auto": "--full-auto (true)",
        "skip_git_repo_check": "--skip-git-repo-check (true)",
        "profile": "--profile NAME",
        "config": "-c key=value for each entry of a table",
        "resume": "exec resume SESSION_ID",
        "resume_on_retry": "a retry resumes the session of the attempt before it (true)",
        "extra_args": "more arguments, verbatim",
    }

    def __init__(self, spec: AgentSpec):
        super().__init__(spec)
        self._called: set[str] = set()  # item ids already recorded as tool calls

    def arguments(self) -> list[str]:
        o = self.spec.options
        args = ["exec", "--json"]
        if self.spec.model:
            args += ["--model", self.spec.model]
        if "sandbox" in o:
            args += ["--sandbox", str(o["sandbox"])]
        if o.get("full_auto") is True:
            args.append("--full-auto")
        if o.get("skip_git_repo_check") is True:
            args.append("--skip-git-repo-check")
        if "profile" in o:
            args += ["--profile", str(o["profile"])]
        for key, value in (o.get("config") or {}).items():
            args += ["-c", f"{key}={value}"]
        args += [str(a) for a in o.get("extra_args", [])]
        if self.resumed():
            args += ["resume", self.resumed()]
        return [*args, "-"]  # the prompt on stdin

    # ---------------------------------------------------------------- stream parser

    def parse(self, obj: Any) -> list[Draft]:
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "thread.started":
            self.session_id = str(obj.get("thread_id", ""))
            return [Draft(kind="session", session_id=self.session_id, text=self.spec.model)]
        if kind in ("turn.started", "item.updated"):
            return []  # progress of what the next item.completed reports whole
        if kind == "item.started":
            item = obj.get("item") or {}
            return [self._call(item)] if item.get("type") in _TOOL_ITEMS else []
        if kind == "item.completed":
            return self._completed(obj.get("item") or {})
        if kind == "turn.completed":
            self.result = Draft(kind="result", subtype="turn.completed", session_id=self.session_id)
            return [Draft(kind="usage", usage=self.usage(obj)), self.result]
        if kind in ("turn.failed", "error"):
            error = obj.get("error") if kind == "turn.failed" else obj
            message = str((error or {}).get("message", "")) if isinstance(error, dict) else str(error)
            drafts = [Draft(kind="error", text=message, is_error=True)]
            if self.result is None or kind == "turn.failed":
                self.result = Draft(
                    kind="result", subtype=kind, is_error=True, text=message, session_id=self.session_id
                )
                drafts.append(self.result)
            if kind == "turn.failed" and isinstance(obj.get("usage"), dict):
                drafts.insert(0, Draft(kind="usage", usage=self.usage(obj)))
            return drafts
        return [Draft(kind="unknown", subtype=str(kind or ""), text=summarize(obj, 2000))]

    def _call(self, item: dict[str, Any]) -> Draft:
        iid, itype = str(item.get("id", "")), item.get("type")
        self._called.add(iid)
        if itype == "command_execution":
            return Draft(kind="tool_call", tool="shell", tool_id=iid, args=summarize(item.get("command", "")))
        if itype == "mcp_tool_call":
            tool = f"{item.get('server', '')}.{item.get('tool', '')}"
            return Draft(kind="tool_call", tool=tool, tool_id=iid, args=summarize(item.get("arguments") or {}))
        return Draft(kind="tool_call", tool="web_search", tool_id=iid, args=summarize(item.get("query", "")))

    def _completed(self, item: dict[str, Any]) -> list[Draft]:
        itype, iid = item.get("type"), str(item.get("id", ""))
        if itype == "agent_message":
            return [Draft(kind="message", text=str(item.get("text", "")))]
        if itype == "reasoning":
            return [Draft(kind="thinking", text=str(item.get("text", "")))]
        if itype == "file_change":
            files = tuple(str(c.get("path", "")) for c in item.get("changes") or [] if isinstance(c, dict))
            return [Draft(kind="file_change", files=files, is_error=item.get("status") == "failed")]
        if itype == "todo_list":
            lines = [f"[{'x' if t.get('completed') else ' '}] {t.get('text', '')}" for t in item.get("items") or []]
            return [Draft(kind="thinking", subtype="todo_list", text="\n".join(lines))]
        if itype == "error":
            return [Draft(kind="error", text=str(item.get("message", "")), is_error=True)]
        if itype in _TOOL_ITEMS:
            out = [] if iid in self._called else [self._call(item)]
            failed = item.get("status") == "failed" or item.get("exit_code") not in (None, 0) or bool(item.get("error"))
            if itype == "command_execution":
                text = str(item.get("aggregated_output", ""))
            elif itype == "mcp_tool_call":
                error, result = item.get("error") or {}, item.get("result") or {}
                text = str(error.get("message", "")) if error else text_of(result.get("content"))
            else:
                text = ""
            return [*out, Draft(kind="tool_result", tool_id=iid, is_error=failed, text=text)]
        return [Draft(kind="unknown", subtype=f"item:{itype}", text=summarize(item, 2000))]

    # ---------------------------------------------------------------- usage extractor

    def usage(self, obj: Any) -> AgentUsage | None:
        u = obj.get("usage") or {}
        cached = as_int(u.get("cached_input_tokens"))
        return AgentUsage(
            model=self.spec.model or "codex",
            input_tokens=max(0, as_int(u.get("input_tokens")) - cached),
            output_tokens=as_int(u.get("output_tokens")),
            cache_read_tokens=cached,
        )

    # ---------------------------------------------------------------- outcome mapping

    def failure(self, result: Draft) -> tuple[str, str]:
        reason = (result.text or result.subtype)[:300]
        low = reason.lower()
        if any(word in low for word in _NOT_RETRIED):
            return "policy", f"{result.subtype}: {reason}"
        return "execution", f"{result.subtype}: {reason}"
