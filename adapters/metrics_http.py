"""Prometheus exposition of the metrics snapshot, and the ``/metrics`` server.

The text is produced by ``prometheus_client`` from a custom collector over
:class:`uok.projections.metrics.MetricsSnapshot` (metric families, never
hand-written text), so it is always well-formed and ``promtool check
metrics`` clean: counters end in ``_total``, durations are histograms in
seconds (``_bucket{le=…}``, ``_sum``, ``_count``). The server is
prometheus_client's own WSGI app, so content negotiation is the library's:
``Accept: application/openmetrics-text`` gets OpenMetrics (with ``# EOF``),
anything else the Prometheus text format; gzip when asked; ``HEAD`` is
answered like ``GET`` without the body.

The collector asks ``source()`` for a snapshot at every scrape; for ``uok
serve`` that catches the read models up from their tracked positions first,
so a scrape costs in proportion to the events appended since the previous
one. Metric names follow behaviour §15 (``uok_gate_runs_total{gate_id=…}``, …);
the full list with meanings is in ``docs/metrics.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from uok.projections.metrics import BOUNDS_MS, Histogram, MetricsSnapshot


class SnapshotCollector:
    """A prometheus_client collector: one :class:`MetricsSnapshot` per collect()."""

    def __init__(self, source: Callable[[], MetricsSnapshot]):
        self.source = source

    def describe(self) -> list:
        return []  # dynamic label sets: nothing to pre-declare

    def collect(self) -> Iterator[Metric]:
        s = self.source()
        yield from families(s)


def _counter(name: str, doc: str, labels: list[str], rows) -> CounterMetricFamily:
    m = CounterMetricFamily(name, doc, labels=labels)
    for values, v in rows:
        m.add_metric(values, v)
    return m


def _gauge(name: str, doc: str, labels: list[str], rows) -> GaugeMetricFamily:
    m = GaugeMetricFamily(name, doc, labels=labels)
    for values, v in rows:
        m.add_metric(values, v)
    return m


LE = (*(floatToGoString(ms / 1000) for ms in BOUNDS_MS), "+Inf")
"""The ``le`` label of each bucket, in seconds, as Prometheus spells them."""


def _histogram(name: str, doc: str, label: str, rows: dict[str, Histogram]) -> HistogramMetricFamily:
    m = HistogramMetricFamily(name, doc, labels=[label])
    for value, h in rows.items():
        m.add_metric([value], list(zip(LE, h.cumulative, strict=True)), h.sum_seconds)
    return m


def families(s: MetricsSnapshot) -> Iterator[Metric]:
    g = s.gates
    yield _counter(
        "uok_gate_runs",
        "Gate attempts decided (GateRun events), per gate",
        ["gate_id"],
        (([k], v.runs) for k, v in g.items()),
    )
    yield _counter("uok_gate_passes", "Gate attempts that passed", ["gate_id"], (([k], v.passes) for k, v in g.items()))
    yield _counter(
        "uok_gate_failures",
        "Gate attempts that failed for good (outcome fail)",
        ["gate_id"],
        (([k], v.failures) for k, v in g.items()),
    )
    yield _counter(
        "uok_gate_retries",
        "Gate attempts that failed and were retried (outcome retry)",
        ["gate_id"],
        (([k], v.retries) for k, v in g.items()),
    )
    yield _counter(
        "uok_gate_manual_attention",
        "Gate attempts that ended manual-attention",
        ["gate_id"],
        (([k], v.manual_attention) for k, v in g.items()),
    )
    yield _counter(
        "uok_gate_short_circuits",
        "Gate calls refused by an open breaker (did not execute)",
        ["gate_id"],
        (([k], v.short_circuits) for k, v in g.items()),
    )
    yield _gauge(
        "uok_circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open",
        ["gate_id"],
        (([k], v.breaker_state) for k, v in g.items() if v.breaker_state is not None),
    )
    yield _gauge(
        "uok_units",
        "Units by state (a final unit counts under its outcome)",
        ["state"],
        (([k], v) for k, v in s.units_by_state.items()),
    )
    yield _counter(
        "uok_turns", "Finished turns by status", ["status"], (([k], v) for k, v in s.turns_by_status.items())
    )
    yield _counter("uok_turns_started", "Turns started", [], [([], s.turns_started)])
    yield _gauge("uok_turns_in_flight", "Turns started and not finished", [], [([], s.turns_in_flight)])
    yield _gauge(
        "uok_runs",
        "Kernel runs by status (open: no exit recorded yet)",
        ["status"],
        (([k], v) for k, v in s.runs_by_status.items()),
    )
    yield _counter(
        "uok_mode_transitions", "Work/model mode changes of running runs (ModeChanged)", [], [([], s.mode_transitions)]
    )
    yield _counter(
        "uok_subagents_spawned",
        "Sub-agents spawned, by model mode",
        ["model_mode"],
        (([k], v) for k, v in s.subagents_spawned.items()),
    )
    yield _counter(
        "uok_intent_waits", "Ready units held by another's read/write intents (UnitWaiting)", [], [([], s.intent_waits)]
    )
    yield _counter(
        "uok_eval_runs",
        "Eval runs by suite, variant and outcome (passed: every unit completed)",
        ["suite", "variant", "outcome"],
        (([suite, v, o], n) for suite, vs in s.eval_runs.items() for v, os_ in vs.items() for o, n in os_.items()),
    )
    yield _counter(
        "uok_cost_usd",
        "Priced model usage in USD, per model",
        ["model"],
        (([k], v) for k, v in s.cost_usd_by_model.items()),
    )
    yield _counter(
        "uok_model_tokens",
        "Model tokens, per model and direction",
        ["model", "direction"],
        (([k, d], n) for k, (tin, tout) in s.tokens_by_model.items() for d, n in (("input", tin), ("output", tout))),
    )
    yield _counter("uok_message_bus_messages", "Messages sent on the bus", [], [([], s.messages_total)])
    yield _gauge("uok_message_bus_unread", "Messages not yet read by their recipient", [], [([], s.messages_unread)])
    yield _gauge(
        "uok_message_bus_agents", "Distinct agents that sent or received a message", [], [([], s.message_agents)]
    )
    yield _gauge(
        "uok_message_bus_conversations",
        "Distinct pairs of agents that exchanged messages",
        [],
        [([], s.message_conversations)],
    )
    yield _gauge("uok_log_position", "Log position the metrics were computed at", [], [([], s.position)])
    yield _gauge(
        "uok_projection_lag_events",
        "Events each read model was behind the log head before this scrape",
        ["projection"],
        (([k], v) for k, v in s.projection_lag.items()),
    )
    yield _histogram(
        "uok_gate_run_duration_seconds",
        "How long each executed gate attempt took (short-circuits left out), per gate",
        "gate_id",
        s.gate_run_seconds,
    )
    yield _histogram(
        "uok_turn_duration_seconds",
        "How long each turn took, from its start to its finish, per turn status",
        "status",
        s.turn_seconds,
    )
    yield _histogram(
        "uok_execution_duration_seconds",
        "How long each unit process ran, per outcome (ok, failed, timeout, error)",
        "outcome",
        s.execution_seconds,
    )


def exposition(snapshot: MetricsSnapshot) -> bytes:
    """The Prometheus text format of one snapshot."""
    return generate_latest(registry_of(lambda: snapshot))


def registry_of(source: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry holding only uok's collector (no process/platform metrics:
    everything reported is a fold of the log)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(source))
    return registry


StartResponse = Callable[..., Any]


def metrics_app(registry: CollectorRegistry, on_error: Callable[[Exception], None] | None = None):
    """A WSGI app: ``/metrics`` through prometheus_client's app (negotiation,
    gzip), plus ``HEAD``, a one-line ``/`` and 404 elsewhere. A scrape that
    fails answers 500 with the reason and the app keeps serving."""
    prometheus = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"use GET or HEAD\n", [("Allow", "GET, HEAD")])
        if path == "/":
            return _plain(start_response, "200 OK", b"uok metrics: GET /metrics\n", head=method == "HEAD")
        if path != "/metrics":
            return _plain(start_response, "404 Not Found", b"not found; try /metrics\n")
        seen: list[tuple[str, list[tuple[str, str]]]] = []
        try:
            body = b"".join(prometheus({**environ, "REQUEST_METHOD": "GET"}, lambda s, h, *_: seen.append((s, h))))
        except Exception as e:  # report, keep serving  # noqa: BLE001
            if on_error is not None:
                on_error(e)
            return _plain(start_response, "500 Internal Server Error", f"uok: {type(e).__name__}: {e}\n".encode())
        status, headers = seen[0]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b"" if method == "HEAD" else body]

    return app


def _plain(start_response: StartResponse, status: str, body: bytes, extra=(), *, head: bool = False) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [b"" if head else body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # no access log on stderr


class MetricsServer:
    """``/metrics`` over HTTP: prometheus_client's WSGI app on a
    single-threaded WSGI server (one request at a time, so scrapes never
    fold concurrently). ``source`` is called per scrape."""

    def __init__(
        self,
        source: Callable[[], MetricsSnapshot],
        host: str = "127.0.0.1",
        port: int = 9464,
        on_error: Callable[[Exception], None] | None = None,
    ):
        self.registry = registry_of(source)
        self.httpd: WSGIServer = make_server(
            host, port, metrics_app(self.registry, on_error), server_class=WSGIServer, handler_class=_QuietHandler
        )

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}/metrics"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="uok-metrics", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
