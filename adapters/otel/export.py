"""Sending a run's spans: to an OTLP/HTTP endpoint (the SDK's OTLP
exporter), to a file as OTLP/JSON, or live while the run runs.

``--otlp-endpoint URL`` takes a collector's base URL (``http://host:4318``,
to which ``/v1/traces`` is added, like ``OTEL_EXPORTER_OTLP_ENDPOINT``) or
the full traces URL (any URL with a path, used as given, like
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from uok.adapters.otel.spans import SpanBuilder
from uok.domain import events as ev
from uok.projections.timeline import RunTimeline, TimelineFold

from uok.errors import InputError, RuntimeFailure

DEFAULT_TIMEOUT = 10.0


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for ``--otlp-endpoint`` (InputError if it is not an http(s) URL)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--otlp-endpoint {endpoint!r} is not an http(s) URL (e.g. http://127.0.0.1:4318)")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def send(spans: Sequence[ReadableSpan], endpoint: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Export ``spans`` in one request (the exporter retries transient
    failures until ``timeout``); RuntimeFailure if the collector refused them."""
    url = traces_url(endpoint)
    exporter = OTLPSpanExporter(endpoint=url, timeout=timeout)
    try:
        result = exporter.export(list(spans))
    finally:
        exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        raise RuntimeFailure(f"could not export {len(spans)} spans to {url} (is an OTLP/HTTP collector listening?)")


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The spans as one OTLP/JSON ``ExportTraceServiceRequest`` (the format of
    the collector's file exporter): ids in hex, enums as integers, keys sorted."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(encode_spans(list(spans)), use_integers_for_enums=True)
    for rs in data.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex(span[key])
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _hex(b64: str) -> str:
    import base64

    return base64.b64decode(b64).hex()


def write(spans: Sequence[ReadableSpan], path: Path) -> None:
    from uok.adapters.files import write_atomically

    write_atomically(path, otlp_json(spans))


def run_spans(tl: RunTimeline) -> list[ReadableSpan]:
    return SpanBuilder(tl).all()


class LiveTracer:
    """Streams a run's spans while it runs (``uok run --otlp-endpoint``).

    A :class:`uok.adapters.runner.RunObserver`: it folds the events the runner
    appends into the run's timeline, exports each turn's spans when the turn
    finishes and the run's span when the run exits, through the SDK's batch
    processor (a background thread; a collector that is down costs the run
    nothing but a warning). The spans are those ``uok trace`` exports later:
    same ids, same attributes. A finished turn's detail is dropped once sent,
    so memory does not grow with the run."""

    def __init__(self, endpoint: str, *, timeout: float = DEFAULT_TIMEOUT):
        self.processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=timeout), schedule_delay_millis=500
        )
        self.fold: TimelineFold | None = None
        self.count = 0
        self.root_sent = False

    def on_events(self, events: list[ev.Event]) -> None:
        finished = []
        for e in events:
            if self.fold is None:
                if type(e) is not ev.KernelEntered:
                    continue
                self.fold = TimelineFold(e.run_id)
            self.count += 1
            self.fold.fold(self.count, e)
            if type(e) is ev.TurnFinished:
                finished.append(e.turn_id)
        if self.fold is None:
            return
        tl = self.fold.timeline
        builder = SpanBuilder(tl)
        for turn_id in finished:
            turn = tl.turns.get(turn_id)
            if turn is None:
                continue
            for span in builder.turn(turn):
                self.processor.on_end(span)
            turn.phases, turn.gates, turn.execution = [], [], None  # sent: keep only what the run's totals need
        if tl.exited_at is not None and not self.root_sent:
            self.processor.on_end(builder.root())
            self.root_sent = True

    def close(self) -> None:
        """Flush what is queued (bounded by the exporter's timeout) and stop."""
        self.processor.shutdown()

    def also(self, other) -> FanOut:
        """This tracer and another run observer, as one observer."""
        return FanOut(self, other)


class FanOut:
    """Several run observers as one (the progress display and the tracer)."""

    def __init__(self, *observers):
        self.observers = [o for o in observers if o is not None]

    def on_events(self, events: list[ev.Event]) -> None:
        for o in self.observers:
            o.on_events(events)
