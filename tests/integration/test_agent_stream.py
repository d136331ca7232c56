"""The tap on an agent's stdout (uok.adapters.agents.stream): every byte
still reaches the turn's output file, every line becomes steps, and what it
cannot read is kept, never dropped nor fatal."""

from __future__ import annotations

import hashlib
from pathlib import Path

from uok.adapters.agents import adapter_for
from uok.adapters.agents.stream import INLINE, AgentStream, BlobStore
from uok.adapters.outputsink import OutputSink
from uok.domain.plan import AgentSpec


def _stream(tmp_path: Path, redact=lambda s: s.replace("SECRET", "[REDACTED]")) -> tuple[AgentStream, list[dict]]:
    steps: list[dict] = []
    sink = OutputSink(tmp_path / "stdout", redact)
    stream = AgentStream(
        sink,
        adapter_for(AgentSpec(name="generic-jsonl")),
        redact=redact,
        blobs=BlobStore(tmp_path / "blobs"),
        on_step=steps.append,
    )
    return stream, steps


def test_lines_split_across_reads_unknown_types_and_a_cut_off_last_line(tmp_path: Path):
    stream, steps = _stream(tmp_path)
    data = (
        b'{"type": "message", "text": "hel'  # one line in three reads
        b'lo"}\n{"type": "brand-new", "x": 1}\nnot json at all\n\n'
        b'{"type": "result", "status": "success", "cost_usd": 0.5}\n{"type": "message", "te'
    )
    for i in range(0, len(data), 7):
        stream.write(data[i : i + 7])
    assert [s["kind"] for s in steps] == ["message", "unknown", "unknown", "result"]  # nothing yet of the cut line
    kept = stream.close()
    assert [(s["kind"], s["subtype"]) for s in steps[1:3]] == [("unknown", "brand-new"), ("unknown", "not-json")]
    assert '"x":1' in steps[1]["text"] and steps[2]["text"] == "not json at all"
    assert (steps[-1]["kind"], steps[-1]["subtype"], steps[-1]["text"]) == (
        "unknown",
        "truncated",
        '{"type": "message", "te',
    )
    assert [s["seq"] for s in steps] == list(range(5))
    assert kept.size == len(data) and (tmp_path / "stdout").read_bytes() == data  # the file has every byte
    outcome = stream.outcome(0)
    assert (outcome.is_error, outcome.cost_usd, outcome.steps) == (False, 0.5, 5)


def test_long_text_goes_to_a_blob_and_everything_is_redacted(tmp_path: Path):
    stream, steps = _stream(tmp_path)
    long = "SECRET " + "x" * 5000
    stream.write(b'{"type": "message", "text": "' + long.encode() + b'"}\n')
    stream.write(b'{"type": "tool_call", "id": "a", "name": "sh", "args": {"cmd": "echo SECRET"}}\n')
    stream.close()
    msg, call = steps
    whole = long.replace("SECRET", "[REDACTED]")
    assert len(msg["text"]) == INLINE and msg["text_size"] == len(whole)
    assert msg["blob"] == hashlib.sha256(whole.encode()).hexdigest()
    assert (tmp_path / "blobs" / msg["blob"][:2] / msg["blob"]).read_text() == whole
    assert "SECRET" not in msg["text"] and "SECRET" not in call["args"] and "[REDACTED]" in call["args"]


def test_a_result_less_stream_fails_closed_and_a_tool_result_gets_its_duration(tmp_path: Path):
    stream, steps = _stream(tmp_path)
    stream.write(b'{"type": "tool_call", "id": "t", "name": "grep"}\n{"type": "tool_result", "id": "t", "text": "1"}\n')
    stream.close()
    assert steps[1]["tool"] == "grep" and isinstance(steps[1]["duration_ms"], int)
    outcome = stream.outcome(0)
    assert outcome.is_error and outcome.subtype == "no-result" and outcome.failure_class == "execution"
