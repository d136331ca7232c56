"""Prometheus done right: the demo run's metrics pass ``promtool check
metrics``; durations are histograms in seconds that match the log; ``uok
serve`` is prometheus_client's own exposition (HEAD, OpenMetrics).

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs
it when missing); without it the first test fails rather than skips."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from uok.domain import events as ev
from uok.projections.metrics import execution_outcome, turn_ms

from tests.conftest import uok
from tests.integration.test_metrics import Server, check_histogram, samples
from tests.run_support import read_events


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    from tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("prom")
    shutil.copytree(FIXTURES / "plans", root / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    db = root / "events.db"
    r = uok("run", str(root / "plan" / "demo.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    return db


def test_promtool_check_metrics_passes_on_the_demo_run(demo_db: Path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    r = uok("metrics", "--db", str(demo_db))
    assert r.returncode == 0, r.stderr
    assert "uok_turn_duration_seconds_bucket" in r.stdout and "uok_gate_run_duration_seconds_bucket" in r.stdout
    check = subprocess.run([promtool, "check", "metrics"], input=r.stdout, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (check.stdout, check.stderr)


def test_duration_histograms_match_the_log(demo_db: Path):
    got = samples(uok("metrics", "--db", str(demo_db)).stdout)
    turns: dict[str, list[int]] = defaultdict(list)
    execs: dict[str, list[int]] = defaultdict(list)
    for _, e in read_events(demo_db):
        if isinstance(e, ev.TurnFinished):
            turns[e.status].append(turn_ms(e))
        elif isinstance(e, ev.ExecutionFinished):
            execs[execution_outcome(e)].append(e.duration_ms)
    assert set(turns) == {"completed", "retry"} and set(execs) == {"ok", "failed"}  # flaky fails once, retried
    for status, d in turns.items():
        check_histogram(got, "uok_turn_duration_seconds", ("status", status), d)
    for outcome, d in execs.items():
        check_histogram(got, "uok_execution_duration_seconds", ("outcome", outcome), d)


def _request(url: str, method: str = "GET", accept: str = "") -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_serve_answers_head_and_negotiates_openmetrics(demo_db: Path):
    srv = Server(demo_db)
    try:
        status, headers, text = _request(srv.url)
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        status, head_headers, body = _request(srv.url, "HEAD")
        assert status == 200 and body == b"" and int(head_headers["Content-Length"]) == len(text)

        om = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
        status, headers, body = _request(srv.url, accept=om)
        assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
        kinds = {f.name: f.type for f in openmetrics_families(body.decode())}
        assert kinds["uok_turn_duration_seconds"] == "histogram" and kinds["uok_gate_runs"] == "counter"
        counts = Counter(s.name for f in openmetrics_families(body.decode()) for s in f.samples)
        assert counts["uok_turn_duration_seconds_count"] == 2  # completed and retry

        assert _request(srv.url, "POST")[0] == 405
        assert _request(srv.url.rsplit("/", 1)[0] + "/nope")[0] == 404
    finally:
        assert srv.stop() == 0
