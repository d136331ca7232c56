"""Prometheus exposition of the metrics snapshot, and the ``/metrics`` server.

The text is produced by ``prometheus_client`` from a custom collector over
:class:`uok.projections.metrics.MetricsSnapshot` (never hand-written), so it is
always well-formed exposition format. The collector asks ``source()`` for a
snapshot at every scrape; for ``uok serve`` that catches the read models up
from their tracked positions first, so a scrape costs in proportion to the
events appended since the previous one.

Metric names follow spec §15 (``uok_gate_runs_total{gate_id=…}``, …); the
full list with meanings is in ``docs/metrics.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from uok.projections.metrics import MetricsSnapshot


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
        "uok_gate_latency_ms",
        "Gate latency over executed attempts: avg, p50, p95 (nearest rank), max",
        ["gate_id", "quantile"],
        (
            ([k, q], val)
            for k, v in g.items()
            if v.latency_count
            for q, val in (
                ("avg", v.latency_avg),
                ("p50", v.latency_p50),
                ("p95", v.latency_p95),
                ("max", v.latency_max),
            )
        ),
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


def exposition(snapshot: MetricsSnapshot) -> bytes:
    """The Prometheus text format of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    return generate_latest(registry)


class MetricsServer:
    """``GET /metrics`` over HTTP (stdlib server, one request at a time, so
    scrapes never fold concurrently). ``source`` is called per scrape."""

    def __init__(
        self,
        source: Callable[[], MetricsSnapshot],
        host: str = "127.0.0.1",
        port: int = 9464,
        on_error: Callable[[Exception], None] | None = None,
    ):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(source))
        self.registry = registry
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    try:
                        body, status, ctype = generate_latest(outer.registry), 200, CONTENT_TYPE_LATEST
                    except Exception as e:  # report, keep serving  # noqa: BLE001
                        if on_error is not None:
                            on_error(e)
                        body, status, ctype = f"uok: {type(e).__name__}: {e}\n".encode(), 500, "text/plain"
                elif path == "/":
                    body, status, ctype = b"uok metrics: GET /metrics\n", 200, "text/plain"
                else:
                    body, status, ctype = b"not found; try /metrics\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass  # no access log on stderr

        self.httpd = HTTPServer((host, port), Handler)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{host}:{self.port}/metrics"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="uok-metrics", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
