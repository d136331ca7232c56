#!/usr/bin/env python3
"""A fake ``claude`` CLI: prints a Claude Code session in its documented
``-p --output-format stream-json --verbose`` format (see
uok.adapters.agents.claude_code for the sources), line by line with small
pauses, as the real one streams. Never touches the network.

$FAKE_CLAUDE picks the session: ``session`` (default: text, two tool calls,
usage, a result with total_cost_usd), ``spend`` (usage that keeps growing,
then a long pause before its result), ``max_turns`` (an error_max_turns
result), ``cut`` (the stream stops mid-line: the agent died), ``unknown``
(event types uok does not know, then a success).
"""

import json
import os
import sys
import time

SESSION = "5f0c9a1e-2b7d-4c3e-9a55-0d6f1e2a3b4c"
MODEL = "claude-sonnet-4-5-20250929"


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
    time.sleep(0.01)


def assistant(mid, content, usage):
    out(
        {
            "type": "assistant",
            "message": {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": content,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
            "parent_tool_use_id": None,
            "session_id": SESSION,
            "uuid": f"u-{mid}-{len(content)}",
        }
    )


def tool_result(tid, content, is_error=False):
    out(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"tool_use_id": tid, "type": "tool_result", "content": content, "is_error": is_error}],
            },
            "parent_tool_use_id": None,
            "session_id": SESSION,
            "uuid": f"r-{tid}",
        }
    )


def usage(inp, outp, cache_write=0, cache_read=0):
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": outp,
        "service_tier": "standard",
    }


def result(subtype="success", cost=0.0421, text="Added hello.py; the check fails until the tests exist.", **extra):
    out(
        {
            "type": "result",
            "subtype": subtype,
            "is_error": subtype != "success",
            "duration_ms": 5234,
            "duration_api_ms": 4890,
            "num_turns": 4,
            "result": text,
            "session_id": SESSION,
            "total_cost_usd": cost,
            "usage": usage(12, 420, 1800, 3600),
            "modelUsage": {
                MODEL: {
                    "inputTokens": 12,
                    "outputTokens": 420,
                    "cacheReadInputTokens": 3600,
                    "cacheCreationInputTokens": 1800,
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200000,
                }
            },
            "permission_denials": [],
            "uuid": "res-1",
            **extra,
        }
    )


def main():
    argv = sys.argv[1:]
    if "-p" not in argv and "--print" not in argv:
        sys.exit("fake claude: only -p (print mode) is faked")
    fmt = argv[argv.index("--output-format") + 1] if "--output-format" in argv else "text"
    if fmt == "stream-json" and "--verbose" not in argv:
        sys.stderr.write("Error: When using --print, --output-format=stream-json requires --verbose\n")
        sys.exit(1)
    prompt = sys.stdin.read().strip()
    scenario = os.environ.get("FAKE_CLAUDE", "session")
    with open("claude-argv.jsonl", "a") as f:  # what each invocation was given, for the tests
        f.write(json.dumps(argv) + "\n")
    out(
        {
            "type": "system",
            "subtype": "init",
            "cwd": os.getcwd(),
            "session_id": SESSION,
            "tools": ["Bash", "Edit", "Glob", "Grep", "Read", "Write"],
            "mcp_servers": [],
            "model": MODEL,
            "permissionMode": "acceptEdits",
            "slash_commands": [],
            "apiKeySource": "none",
            "uuid": "init-1",
        }
    )
    if scenario == "unknown":
        out(
            {
                "type": "rate_limit_event",
                "rate_limit_info": {"status": "allowed"},
                "uuid": "rl-1",
                "session_id": SESSION,
            }
        )
        out({"type": "system", "subtype": "compact_boundary", "session_id": SESSION, "uuid": "cb-1"})
    text = f"I'll do this: {prompt}. Using key AKIAIOSFODNN7EXAMPLE from the env."
    u1 = usage(4, 60, 1800, 0)
    # one API message split over two events (text, then the tool call), sharing its id and usage
    assistant("msg_01", [{"type": "text", "text": text}], u1)
    assistant(
        "msg_01",
        [
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "Write",
                "input": {"file_path": "hello.py", "content": "print('hi')\n"},
            }
        ],
        u1,
    )
    with open("hello.py", "w") as f:
        f.write("print('hi')\n")
    tool_result("toolu_01", "File created successfully at: hello.py")
    if scenario == "cut":
        sys.stdout.write('{"type": "assistant", "message": {"id": "msg_02", "content": [{"type": "te')
        sys.stdout.flush()
        os._exit(1)
    if scenario == "spend":
        for i in range(2, 40):
            assistant(f"msg_{i:02d}", [{"type": "text", "text": f"step {i}"}], usage(4, 2000, 0, 20000))
            time.sleep(0.05)
        time.sleep(60)
        result()
        return
    assistant(
        "msg_02",
        [
            {
                "type": "tool_use",
                "id": "toolu_02",
                "name": "Bash",
                "input": {"command": "python3 -m pytest -q", "description": "Run the tests"},
            }
        ],
        usage(6, 40, 0, 1800),
    )
    tool_result("toolu_02", [{"type": "text", "text": "ERROR: file or directory not found: tests"}], is_error=True)
    assistant(
        "msg_03",
        [{"type": "text", "text": "Added hello.py; the check fails until the tests exist."}],
        usage(2, 320, 0, 1800),
    )
    if scenario == "max_turns":
        result("error_max_turns", cost=0.0107, text="")
        sys.exit(1)
    result()


main()
