"""OpenTelemetry traces: `uok trace` to a real OTLP/HTTP receiver on
127.0.0.1 (decoded with opentelemetry-proto), `--out` OTLP/JSON, `uok run
--otlp-endpoint` streaming live, and each task's TRACEPARENT."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import orjson
import pytest
from uok.adapters.otel.ids import span_id, trace_id
from uok.domain import events as ev

from tests.conftest import uok
from tests.otlp_receiver import OtlpReceiver
from tests.run_support import read_events

USAGE = "claude-sonnet-4-6"
TASK = (
    "import json, os, sys; "
    "open(os.environ['OUT'] + '/tp-' + os.environ['UOK_UNIT_ID'], 'w').write(os.environ['TRACEPARENT']); "
    "open(os.environ['UOK_USAGE_FILE'], 'a').write(json.dumps("
    "{'model': '" + USAGE + "', 'input_tokens': 1200, 'output_tokens': 300}) + '\\n')"
)


def traced_plan(root: Path) -> Path:
    """Two tasks that report model usage and record the TRACEPARENT they saw;
    the second depends on the first and has a verification gate."""
    out = root / "out"
    out.mkdir(parents=True, exist_ok=True)
    cmd = f'["{sys.executable}", "-c", "{TASK.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"]'
    plan = root / "traced.toml"
    plan.write_text(
        f"""[plan]
id = "traced"
[[milestones]]
id = "M1"
[[milestones.slices]]
id = "S1"
[[milestones.slices.tasks]]
id = "think"
command = {cmd}
env = {{ OUT = "{out}" }}
[[milestones.slices.tasks]]
id = "answer"
depends_on = ["think"]
command = {cmd}
env = {{ OUT = "{out}" }}
gates = [{{ id = "verification", command = ["{sys.executable}", "-c", "pass"] }}]
"""
    )
    return plan


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("trace")
    plan = traced_plan(root)
    db = root / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    run_id = next(e.run_id for _, e in read_events(db) if isinstance(e, ev.KernelEntered))
    return db, root / "out", run_id


def turns_of(db: Path) -> list[ev.TurnStarted]:
    return [e for _, e in read_events(db) if isinstance(e, ev.TurnStarted)]


def check_trace(spans, db: Path, run_id: str) -> None:
    assert {s.trace_id for s in spans} == {f"{trace_id(run_id):032x}"}, "one trace"
    roots = [s for s in spans if not s.parent]
    assert len(roots) == 1 and roots[0].attributes["uok.run.id"] == run_id
    root = roots[0]
    turns = [s for s in spans if "uok.turn.id" in s.attributes]
    started = turns_of(db)
    assert sorted(s.attributes["uok.turn.id"] for s in turns) == sorted(t.turn_id for t in started)
    assert all(s.parent == root.span_id for s in turns), "every turn span is a child of the run span"
    task_turns = [s for s in turns if s.attributes["uok.unit.type"] == "execute-task"]
    assert len(task_turns) == 2
    for s in task_turns:  # GenAI semantic-convention usage attributes, from the usage the task reported
        assert s.attributes["gen_ai.usage.input_tokens"] == 1200
        assert s.attributes["gen_ai.usage.output_tokens"] == 300
        assert s.attributes["gen_ai.request.model"] == USAGE
        assert s.attributes["uok.cost.usd"] > 0
    assert root.attributes["gen_ai.usage.input_tokens"] == 2400
    by_id = {s.span_id: s for s in spans}
    children = [s for s in spans if s.parent and by_id[s.parent] in turns]
    assert {s.name.split()[0] for s in children} >= {"phase", "execute", "gate"}
    assert len(spans) == len({s.span_id for s in spans}), "span ids are unique"


def test_trace_to_an_otlp_http_receiver(traced):
    db, _out, run_id = traced
    with OtlpReceiver() as rx:
        r = uok("trace", "latest", "--db", str(db), "--otlp-endpoint", rx.url)
        assert r.returncode == 0, r.stderr
        assert f"trace {trace_id(run_id):032x}" in r.stderr
        check_trace(rx.spans, db, run_id)
        first = sorted((s.span_id, s.parent, s.name, s.span.start_time_unix_nano) for s in rx.spans)
        rx.spans.clear()
        r = uok("trace", run_id, "--db", str(db), "--otlp-endpoint", rx.url + "/v1/traces")
        assert r.returncode == 0, r.stderr
        again = sorted((s.span_id, s.parent, s.name, s.span.start_time_unix_nano) for s in rx.spans)
        assert again == first, "ids and times are derived from the log: a second export is the same trace"


def test_each_task_sees_a_valid_traceparent_naming_its_execution_span(traced):
    db, out, run_id = traced
    turns = {t.unit_id: t.turn_id for t in turns_of(db)}
    with OtlpReceiver() as rx:
        assert uok("trace", run_id, "--db", str(db), "--otlp-endpoint", rx.url).returncode == 0
        executions = {s.span_id: s for s in rx.spans if s.name.startswith("execute ")}
    for unit in ("think", "answer"):
        tp = (out / f"tp-{unit}").read_text()
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", tp)
        assert m, tp
        assert m.group(1) == f"{trace_id(run_id):032x}" and int(m.group(1), 16) != 0
        assert m.group(2) == f"{span_id(run_id, 'execution', turns[unit]):016x}"
        assert m.group(2) in executions and executions[m.group(2)].name == f"execute {unit}"


def test_trace_out_writes_the_same_spans_as_otlp_json_byte_identically(traced, tmp_path: Path):
    db, _out, run_id = traced
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for f in (a, b):
        r = uok("trace", run_id, "--db", str(db), "--out", str(f))
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    data = orjson.loads(a.read_bytes())
    spans = [s for rs in data["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["traceId"] for s in spans} == {f"{trace_id(run_id):032x}"}
    assert sum(1 for s in spans if "parentSpanId" not in s) == 1
    assert sum(1 for s in spans if s["name"].startswith("turn ")) == len(turns_of(db))


def test_run_streams_its_spans_live(tmp_path: Path):
    plan = traced_plan(tmp_path)
    db = tmp_path / "events.db"
    with OtlpReceiver() as rx:
        r = uok("run", str(plan), "--db", str(db), "--quiet", "--otlp-endpoint", rx.url)
        assert r.returncode == 0, r.stderr
        run_id = next(e.run_id for _, e in read_events(db) if isinstance(e, ev.KernelEntered))
        live = sorted((s.span_id, s.parent, s.name) for s in rx.spans)  # flushed before `uok run` exits
        check_trace(rx.spans, db, run_id)
        rx.spans.clear()
        assert uok("trace", run_id, "--db", str(db), "--otlp-endpoint", rx.url).returncode == 0
        assert sorted((s.span_id, s.parent, s.name) for s in rx.spans) == live, "live spans are the exported ones"


def test_bad_endpoints_fail_cleanly(traced):
    db, _out, run_id = traced
    r = uok("trace", run_id, "--db", str(db), "--otlp-endpoint", "ftp://x")
    assert r.returncode == 2 and "not an http(s) URL" in r.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = uok("trace", run_id, "--db", str(db), "--otlp-endpoint", f"http://127.0.0.1:{port}", "--timeout", "1")
    assert r.returncode == 1 and "could not export" in r.stderr
    r = uok("trace", "no-such-run", "--db", str(db), "--out", "-")
    assert r.returncode == 2 and "no run 'no-such-run'" in r.stderr
