"""Metrics: `uok serve` over real HTTP, parsed by prometheus_client's own
parser, counts checked against the log itself; `uok metrics --at P`."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.events import GateRun
from uok.projections.metrics import BOUNDS_MS, Durations, quantile, snapshot

from bench.eventgen import fill
from tests.conftest import json_lines, uok
from tests.served import Served


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("m") / "g.db"
    with SqliteEventStore(db, synchronous="NORMAL") as store:
        fill(store, 3_000, seed=11)
    return db


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def from_log(db: Path, upto: int | None = None) -> dict:
    """What the metrics must say, computed straight from the events."""
    runs: Counter = Counter()
    by_outcome: Counter = Counter()
    durations: dict[str, list[int]] = defaultdict(list)
    with SqliteEventStore(db) as store:
        for _pos, e in EventLog(store).events(upto=upto):
            if isinstance(e, GateRun):
                runs[e.gate_id] += 1
                by_outcome[(e.gate_id, e.outcome)] += 1
                if not e.short_circuited:
                    durations[e.gate_id].append(e.duration_ms)
    return {"runs": runs, "by_outcome": by_outcome, "durations": durations}


def nearest_rank(values: list[int], q: float) -> float:
    v = sorted(values)
    return float(v[max(1, math.ceil(q * len(v))) - 1])


def check_gates(text: str, want: dict) -> None:
    got = samples(text)
    assert want["runs"], "the log has gate runs"
    for gate, n in want["runs"].items():
        assert got[("uok_gate_runs_total", (("gate_id", gate),))] == n
        for outcome, metric in (("pass", "passes"), ("fail", "failures"), ("retry", "retries")):
            assert got[(f"uok_gate_{metric}_total", (("gate_id", gate),))] == want["by_outcome"][(gate, outcome)]
        check_histogram(got, "uok_gate_run_duration_seconds", ("gate_id", gate), want["durations"][gate])


def check_histogram(got: dict, name: str, label: tuple[str, str], durations_ms: list[int]) -> None:
    """The histogram's buckets, sum and count are those of the durations."""
    assert got[(f"{name}_count", (label,))] == len(durations_ms)
    assert got[(f"{name}_sum", (label,))] == pytest.approx(sum(durations_ms) / 1000)
    buckets = {dict(k[1])["le"]: v for k, v in got.items() if k[0] == f"{name}_bucket" and label in k[1]}
    assert buckets["+Inf"] == len(durations_ms) and len(buckets) == len(BOUNDS_MS) + 1
    for ms in BOUNDS_MS:
        le = [k for k in buckets if k != "+Inf" and float(k) == ms / 1000]
        assert len(le) == 1 and buckets[le[0]] == sum(1 for d in durations_ms if d <= ms), (name, label, ms)


class Server(Served):
    """`uok serve` on a free port."""

    def __init__(self, db: Path):
        super().__init__("serve", "--db", str(db), ready="serving metrics")

    def get(self, path: str = "") -> tuple[int, str, str]:
        url = self.url if not path else self.url.rsplit("/", 1)[0] + path
        status, headers, body = self.request(url)
        return status, headers.get("content-type", "") if status == 200 else "", body


def test_serve_over_http_parses_and_matches_the_log(log: Path):
    srv = Server(log)
    try:
        assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/metrics")
        status, ctype, text = srv.get()
        assert status == 200 and ctype.startswith("text/plain")
        check_gates(text, from_log(log))
        got = samples(text)
        with SqliteEventStore(log) as store:
            head = store.head()[0]
        assert got[("uok_log_position", ())] == head
        units = {dict(k[1])["state"]: v for k, v in got.items() if k[0] == "uok_units"}
        sql = json_lines(
            uok("sql", "SELECT state, count(*) AS n FROM units GROUP BY ALL", "--db", str(log), "--json").stdout
        )
        assert units == {r["state"]: r["n"] for r in sql}
        msgs = json_lines(
            uok(
                "sql",
                "SELECT count(*) AS n, count(*) FILTER (WHERE NOT is_read) AS unread FROM messages",
                "--db",
                str(log),
                "--json",
            ).stdout
        )[0]
        assert got[("uok_message_bus_messages_total", ())] == msgs["n"] > 0
        assert got[("uok_message_bus_unread", ())] == msgs["unread"]
        assert any(k[0] == "uok_cost_usd_total" for k in got) and any(k[0] == "uok_circuit_breaker_state" for k in got)
        assert srv.get("/nope")[0] == 404

        # new events appear at the next scrape (the collector catches up from its position)
        with SqliteEventStore(log) as store:
            at = datetime(2026, 6, 1, tzinfo=UTC)
            EventLog(store).append(
                [
                    GateRun(
                        run_id="late",
                        at=at,
                        turn_id="late:1",
                        unit_id="u",
                        gate_id="late-gate",
                        gate_type="command",
                        attempt=1,
                        max_attempts=1,
                        outcome=o,
                        duration_ms=d,
                    )
                    for o, d in (("pass", 5), ("fail", 7), ("pass", 9))
                ]
            )
        status, _, text = srv.get()
        got = samples(text)
        assert got[("uok_gate_runs_total", (("gate_id", "late-gate"),))] == 3
        assert got[("uok_gate_failures_total", (("gate_id", "late-gate"),))] == 1
        check_histogram(got, "uok_gate_run_duration_seconds", ("gate_id", "late-gate"), [5, 7, 9])
        assert got[("uok_log_position", ())] == head + 3
        lag = {dict(k[1])["projection"]: v for k, v in got.items() if k[0] == "uok_projection_lag_events"}
        assert lag["metrics"] == 3 and lag["gates"] == 3  # behind by the 3 new events before this scrape
    finally:
        assert srv.stop() == 0


def test_metrics_at_a_past_position_is_the_fold_up_to_it(log: Path):
    r = uok("metrics", "--db", str(log), "--at", "1500")
    assert r.returncode == 0, r.stderr
    check_gates(r.stdout, from_log(log, upto=1500))
    assert samples(r.stdout)[("uok_log_position", ())] == 1500
    r = uok("metrics", "--db", str(log), "--at", "99999999")
    assert r.returncode == 2 and "outside the log" in r.stderr


def test_metrics_json_and_the_breaker_gauge(log: Path):
    r = uok("metrics", "--db", str(log), "--json")
    assert r.returncode == 0, r.stderr
    snap = orjson.loads(r.stdout)
    opened = json_lines(
        uok(
            "sql",
            "SELECT gate_id, arg_max(to_state, position) AS s FROM breaker_transitions GROUP BY ALL",
            "--db",
            str(log),
            "--json",
        ).stdout
    )
    assert opened, "the generated log trips breakers"
    gauge = {"closed": 0, "half-open": 1, "open": 2}
    for row in opened:
        assert snap["gates"][row["gate_id"]]["breaker_state"] == gauge[row["s"]]
    for gate, d in from_log(log)["durations"].items():  # exact quantiles over every executed attempt
        g = snap["gates"][gate]
        assert (g["latency_p50"], g["latency_p95"], g["latency_max"]) == (
            nearest_rank(d, 0.5),
            nearest_rank(d, 0.95),
            float(max(d)),
        )
        assert g["latency_avg"] == pytest.approx(sum(d) / len(d))


def test_quantiles_are_nearest_rank():
    counts = {10: 1, 20: 1, 30: 1, 40: 1, 1000: 1}
    assert [quantile(counts, 5, q) for q in (0.5, 0.95, 1.0, 0.2)] == [30.0, 1000.0, 1000.0, 10.0]
    assert quantile({}, 0, 0.5) == 0.0
    assert quantile({7: 100}, 100, 0.95) == 7.0


def test_snapshot_tolerates_missing_sources():
    d = Durations()
    for ms in (3, 3, 5):
        d.add(ms, exact=True)
    s = snapshot({"metrics": {"gate:g": d}}, 42)
    assert s.position == 42 and s.gates["g"].latency_p50 == 3.0 and s.gates["g"].latency_max == 5.0
    assert s.gate_run_seconds["g"].count == 3 and s.gate_run_seconds["g"].cumulative[0] == 3  # all <= 5 ms
    assert s.gates["g"].runs == 0 and s.units_by_state == {} and s.messages_total == 0


def test_serve_refuses_a_busy_port_and_a_missing_log(log: Path, tmp_path: Path):
    srv = Server(log)
    try:
        port = srv.url.split(":")[2].split("/")[0]
        r = uok("serve", "--db", str(log), "--port", port, timeout=30)
        assert r.returncode == 2 and "cannot listen" in r.stderr
    finally:
        srv.stop()
    r = uok("serve", "--db", str(tmp_path / "none.db"), "--port", "0", timeout=30)
    assert r.returncode == 2 and "no event log" in r.stderr
