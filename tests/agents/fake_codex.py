#!/usr/bin/env python3
"""A fake ``codex`` CLI: prints a ``codex exec --json`` session in its
documented JSON lines (openai/codex docs/exec.md, codex-rs/exec/src/exec_events.rs),
with small pauses, as the real one streams. Never touches the network.

$FAKE_CODEX picks the session: ``session`` (default: reasoning, a command,
a file change, an MCP tool call, the answer, turn.completed with usage),
``failed`` (turn.failed on a rate limit), ``invalid`` (turn.failed on an
invalid request).
"""

import json
import os
import sys
import time


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    time.sleep(0.01)


def main():
    argv = sys.argv[1:]
    if argv[:1] != ["exec"] or "--json" not in argv:
        sys.exit("fake codex: only `codex exec --json` is faked")
    prompt = sys.stdin.read().strip() if argv[-1] == "-" else argv[-1]
    scenario = os.environ.get("FAKE_CODEX", "session")
    out({"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"})
    out({"type": "turn.started"})
    out({"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": f"**Planning: {prompt}**"}})
    if scenario == "failed":
        out({"type": "turn.failed", "error": {"message": "stream disconnected before completion: rate limit reached"}})
        sys.exit(1)
    if scenario == "invalid":
        out({"type": "error", "message": "invalid_request_error: unsupported parameter"})
        out({"type": "turn.failed", "error": {"message": "invalid_request_error: unsupported parameter"}})
        sys.exit(1)
    cmd = {
        "id": "item_1",
        "type": "command_execution",
        "command": "bash -lc ls",
        "aggregated_output": "",
        "status": "in_progress",
    }
    out({"type": "item.started", "item": cmd})
    out(
        {
            "type": "item.completed",
            "item": {**cmd, "aggregated_output": "README.md\n", "exit_code": 0, "status": "completed"},
        }
    )
    with open("notes.md", "w") as f:
        f.write(prompt + "\n")
    out(
        {
            "type": "item.completed",
            "item": {
                "id": "item_2",
                "type": "file_change",
                "changes": [{"path": "notes.md", "kind": "add"}],
                "status": "completed",
            },
        }
    )
    mcp = {
        "id": "item_3",
        "type": "mcp_tool_call",
        "server": "docs",
        "tool": "search",
        "arguments": {"q": "exec"},
        "result": None,
        "error": None,
        "status": "in_progress",
    }
    out({"type": "item.started", "item": mcp})
    out({"type": "item.completed", "item": {**mcp, "error": {"message": "server timed out"}, "status": "failed"}})
    out({"type": "item.completed", "item": {"id": "item_4", "type": "agent_message", "text": "Wrote notes.md."}})
    out(
        {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}}
    )


main()
