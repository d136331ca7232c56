"""`uok ui` over real HTTP on 127.0.0.1 (no browser: tests/e2e/test_ui_browser.py
drives Chromium): every page, time travel parameters, errors, the event
stream, /metrics, the SQL box, and that nothing is fetched from elsewhere."""

from __future__ import annotations

import re
import socket
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev

from tests.conftest import uok
from tests.ui_support import UiServer, demo_log

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["'](?:[a-z]+:)?//|url\(\s*["']?(?:[a-z]+:)?//|@import""", re.I)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    db, run_id, events = demo_log(tmp_path_factory.mktemp("web"))
    with UiServer(db) as srv:
        yield srv, db, run_id, events


def test_every_page_answers_and_fetches_nothing_from_elsewhere(demo):
    srv, _db, run_id, events = demo
    turns = [e for _, e in events if isinstance(e, ev.TurnStarted)]
    pages = {
        "/": run_id,
        f"/runs/{run_id}": "Unit graph",
        f"/runs/{run_id}/units/flaky": "first attempt: failing on purpose",
        f"/runs/{run_id}/units/report": "no secrets in 1 scanned file",
        f"/runs/{run_id}/units/complete-slice%3AM1%2FS1": "complete-slice:M1/S1",
        "/breakers": "security",
        "/stats": "Turn duration",
        "/bus": "Message bus",
        "/evals": "No eval recorded yet",
        "/diff?from=1&to=50": "What changed from position 1 to 50",
        "/sql?q=SELECT+count(*)+AS+n+FROM+events": "sql-result",
    }
    for path, text in pages.items():
        status, headers, body = srv.get(path)
        assert status == 200, (path, body[:500])
        assert text in body, path
        assert not EXTERNAL.search(body), (path, EXTERNAL.search(body))
        assert headers["content-type"].startswith("text/html")
    _, _, run_page = srv.get(f"/runs/{run_id}")
    assert run_page.count('class="bar ') == len(turns) == 13
    for asset in ("/static/uok.css", "/static/uok.js"):
        status, _, body = srv.get(asset)
        assert status == 200 and not EXTERNAL.search(body) and "http" not in body


def test_time_travel_and_its_errors(demo):
    srv, _db, run_id, events = demo
    failed_at = next(p for p, e in events if isinstance(e, ev.UnitTransitioned) and e.to_state == "failed")
    status, headers, body = srv.get(f"/runs/{run_id}?at={failed_at}")
    assert status == 200 and headers["x-uok-live"] == "0" and headers["x-uok-position"] == str(failed_at)
    row = re.search(r'<tr data-unit="flaky">.*?</tr>', body, re.S).group(0)
    assert 'data-state="failed"' in row
    status, headers, body = srv.get(f"/runs/{run_id}", {"X-Uok-Partial": "1"})
    assert status == 200 and headers["x-uok-live"] == "1" and "<html" not in body and "svg" in body
    assert srv.get(f"/runs/{run_id}?at=999999")[0] == 400
    assert srv.get(f"/runs/{run_id}?at=soon")[0] == 400
    assert srv.get(f"/runs/{run_id}?at=1")[0] == 200  # the run entered at position 1
    assert srv.get("/runs/nope")[0] == 404
    assert srv.get(f"/runs/{run_id}/units/nope")[0] == 404
    status, _, body = srv.get(f"/diff?from={failed_at - 1}&to={failed_at}")
    assert status == 200 and re.search(r'data-unit="flaky">.*?running.*?failed', body, re.S)


def test_runs_filter_by_status_and_plan(demo):
    srv, _db, run_id, _ = demo
    assert f'data-run="{run_id}"' in srv.get("/?status=ok&plan=demo")[2]
    body = srv.get("/?status=error")[2]
    assert f'data-run="{run_id}"' not in body and "No run matches" in body
    assert f'data-run="{run_id}"' not in srv.get("/?plan=other")[2]


def test_sql_box_is_read_only(demo):
    srv, *_ = demo
    status, _, body = srv.get("/sql?q=" + urllib.request.quote("DELETE FROM events"))
    assert status == 200 and "query refused" in body
    status, _, body = srv.get("/sql?q=" + urllib.request.quote("SELECT * FROM read_csv('/etc/passwd')"))
    assert "query refused" in body
    status, _, body = srv.get("/sql?q=" + urllib.request.quote("SELECT unit_id FROM units ORDER BY unit_id LIMIT 2"))
    assert "<td>build-a</td>" in body


def test_metrics_endpoint_is_prometheus_exposition(demo):
    srv, *_ = demo
    status, headers, body = srv.get("/metrics")
    assert status == 200 and "uok_turn_duration_seconds_bucket" in body
    status, headers, body = srv.get("/metrics", method="HEAD")
    assert status == 200 and body == ""
    status, headers, body = srv.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["content-type"].startswith("application/openmetrics-text") and body.endswith("# EOF\n")


def test_event_stream_reports_each_new_head(demo):
    srv, db, *_ = demo
    with SqliteEventStore(db) as store:
        head = store.head()[0]
    with urllib.request.urlopen(f"{srv.url}/api/stream?after={head}", timeout=60) as stream:
        with SqliteEventStore(db) as store:
            EventLog(store).append(
                [ev.MessageSent(at=datetime(2026, 1, 1, tzinfo=UTC), message_id="m-web", sender="t", recipient="u")]
            )
        for raw in stream:  # blocks until the server sees the new head (ping comments may come first)
            if raw.startswith(b"data:"):
                assert int(raw.split(b":", 1)[1]) == head + 1
                break
    _status, _, body = srv.get("/bus")
    assert "m-web" not in body and ">u <small>1 received" in body


def test_ui_refuses_a_missing_log_and_a_busy_port(demo, tmp_path: Path):
    srv, db, *_ = demo
    r = uok("ui", "--db", str(tmp_path / "none.db"), "--port", "0", timeout=60)
    assert r.returncode == 2 and "no event log" in r.stderr
    port = srv.url.rsplit(":", 1)[1]
    r = uok("ui", "--db", str(db), "--port", port, timeout=60)
    assert r.returncode == 2 and "cannot listen" in r.stderr


def test_sigterm_stops_the_server_cleanly(tmp_path: Path, demo):
    _srv, db, *_ = demo
    srv = UiServer(db)
    host, port = srv.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10):
        pass
    assert srv.stop() == 0


def test_every_template_and_asset_is_package_data():
    """A template or asset left out of [tool.setuptools.package-data] would be
    missing from the wheel, and the installed web view would break."""
    import tomllib

    from tests.conftest import ROOT

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    web = ROOT / "adapters" / "web"
    shipped = {
        p
        for package, globs in patterns.items()
        if package.startswith("uok.adapters.web.")
        for pattern in globs
        for p in web.joinpath(*package.split(".")[3:]).glob(pattern)
    }
    files = {p for p in web.rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts}
    assert files and files <= shipped, sorted(str(p.relative_to(web)) for p in files - shipped)
