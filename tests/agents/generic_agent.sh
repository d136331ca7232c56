#!/bin/sh
# A generic-jsonl agent in a few lines of shell (docs/agents.md): it reads its
# prompt on stdin, writes a file, and reports what it did as uok JSON lines.
prompt=$(cat)
echo '{"type": "session", "session_id": "sh-1", "model": "claude-haiku-4-5"}'
echo "{\"type\": \"message\", \"text\": \"asked: $prompt\"}"
echo '{"type": "tool_call", "id": "t1", "name": "write", "args": {"path": "out.txt"}, "files": ["out.txt"]}'
echo "$prompt" > out.txt
echo '{"type": "tool_result", "id": "t1", "text": "wrote out.txt"}'
echo '{"type": "usage", "model": "claude-haiku-4-5", "input_tokens": 1000, "output_tokens": 200}'
echo '{"type": "result", "status": "success", "text": "done", "cost_usd": 0.0125}'
