#!/usr/bin/env python3
"""A fake ``gemini`` CLI: prints a headless ``--output-format stream-json``
session in its documented JSON lines (google-gemini/gemini-cli
docs/cli/headless.md, packages/core/src/output/types.ts), with small
pauses, as the real one streams. Never touches the network.

$FAKE_GEMINI picks the session: ``session`` (default: the answer in delta
chunks, a tool call and its result, a warning, a success result with
stats), ``turn_limit`` (an error result, exit 53), ``auth`` (exit 41).
"""

import json
import os
import sys
import time

TS = "2026-11-30T12:00:00.000Z"


def out(obj):
    sys.stdout.write(json.dumps({**obj, "timestamp": TS}) + "\n")
    sys.stdout.flush()
    time.sleep(0.01)


def main():
    argv = sys.argv[1:]
    if "--output-format" not in argv or argv[argv.index("--output-format") + 1] != "stream-json":
        sys.exit("fake gemini: only --output-format stream-json is faked")
    prompt = sys.stdin.read().strip()
    scenario = os.environ.get("FAKE_GEMINI", "session")
    model = argv[argv.index("--model") + 1] if "--model" in argv else "gemini-2.5-pro"
    out({"type": "init", "session_id": "c0ffee00-1111-2222-3333-444455556666", "model": model})
    out({"type": "message", "role": "user", "content": prompt})
    if scenario == "auth":
        out(
            {
                "type": "result",
                "status": "error",
                "error": {"type": "FatalAuthenticationError", "message": "Please set an Auth method"},
            }
        )
        sys.exit(41)
    out(
        {
            "type": "tool_use",
            "tool_name": "write_file",
            "tool_id": "write_file-1",
            "parameters": {"file_path": "plan.txt", "content": prompt},
        }
    )
    with open("plan.txt", "w") as f:
        f.write(prompt + "\n")
    out(
        {"type": "tool_result", "tool_id": "write_file-1", "status": "success", "output": "Successfully wrote plan.txt"}
    )
    out({"type": "error", "severity": "warning", "message": "Loop detection is disabled"})
    for chunk in ("I wrote ", "plan.txt ", "as asked."):
        out({"type": "message", "role": "assistant", "content": chunk, "delta": True})
    if scenario == "turn_limit":
        out(
            {
                "type": "result",
                "status": "error",
                "error": {"type": "FatalTurnLimitedError", "message": "Reached max session turns"},
                "stats": {
                    "total_tokens": 900,
                    "input_tokens": 800,
                    "output_tokens": 100,
                    "cached": 0,
                    "input": 800,
                    "duration_ms": 900,
                    "tool_calls": 1,
                },
            }
        )
        sys.exit(53)
    out(
        {
            "type": "result",
            "status": "success",
            "stats": {
                "total_tokens": 12100,
                "input_tokens": 12000,
                "output_tokens": 100,
                "cached": 2000,
                "input": 10000,
                "duration_ms": 2100,
                "tool_calls": 1,
            },
        }
    )


main()
