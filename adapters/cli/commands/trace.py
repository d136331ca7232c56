"""``uok trace RUN``: a run as OpenTelemetry spans (OTLP/HTTP or a file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uok.adapters.cli.common import read_models, refuse_to_replace_a_log
from uok.adapters.cli.framework import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "trace",
        description="""
            Export RUN as one OpenTelemetry trace: a span for the run, one per turn, and under
            each turn its phases, its execution (with an agent task's tool calls under it) and
            its gate attempts, with the GenAI usage attributes for model tokens and uok.cost.usd. Trace and span ids are derived from
            the log, so the export is reproducible; each task ran with a TRACEPARENT naming its
            execution span. RUN is a run id or 'latest'. Needs the 'otel' extra.
        """,
        examples="""
            uok trace latest --otlp-endpoint http://127.0.0.1:4318
            uok trace r20261124192936-5ca560 --out run.otlp.json
            uok run plan.toml --otlp-endpoint http://127.0.0.1:4318   # stream them while the run runs
        """,
        notes="--otlp-endpoint: a collector's base URL (/v1/traces is added) or a full URL with a path.",
    )
    p.add_argument("run", metavar="RUN", help="run id, or 'latest'")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--otlp-endpoint", metavar="URL", help="OTLP/HTTP collector: base URL or full /v1/traces URL")
    to.add_argument("--out", metavar="FILE", help="write OTLP/JSON here ('-': stdout)")
    p.add_argument("--at", type=int, metavar="P", help="the run as of log position P (default: the head)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="export timeout (default 10)")
    p.set_defaults(func=trace)


def trace(args: argparse.Namespace) -> int:
    from uok.adapters.cli.commands.ui import extra_module
    from uok.adapters.runread import RunReader

    export = extra_module("uok.adapters.otel.export", "otel")
    if args.otlp_endpoint:
        export.traces_url(args.otlp_endpoint)  # a bad URL fails before the log is read
    out = None if args.out in (None, "-") else Path(args.out)
    if out is not None:
        refuse_to_replace_a_log(out, "--out")
    with read_models(args, readonly=True) as rm:
        reader = RunReader(rm.store, rm.runner, catch_up=False)
        rm.store.verify_chain()
        position = rm.check_position(rm.head() if args.at is None else args.at, "--at")
        run_id = reader.resolve_run(args.run, position)
        spans = export.run_spans(reader.timeline(run_id, position))
    if args.otlp_endpoint:
        export.send(spans, args.otlp_endpoint, timeout=args.timeout)
        where = export.traces_url(args.otlp_endpoint)
    elif out is None:
        sys.stdout.buffer.write(export.otlp_json(spans))
        return 0
    else:
        export.write(spans, out)
        where = str(out)
    print(f"run {run_id}: {len(spans)} spans, trace {spans[0].context.trace_id:032x} -> {where}", file=sys.stderr)
    return 0
