"""`uok report RUN --html FILE`: one self-contained file, byte-identical for
the same log (Chromium opening it offline: tests/e2e/test_ui_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from uok.domain import events as ev

from tests.conftest import uok
from tests.e2e.test_web import EXTERNAL
from tests.run_support import read_events
from tests.ui_support import demo_log


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    db, run_id, events = demo_log(root)
    return root, db, run_id, events


def test_report_is_byte_identical_and_self_contained(demo):
    root, db, run_id, events = demo
    a, b = root / "a.html", root / "b.html"
    assert uok("report", run_id, "--db", str(db), "--html", str(a)).returncode == 0
    r = uok("report", "latest", "--db", str(db), "--html", str(b))
    assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    html = a.read_text()
    turns = [e for _, e in events if isinstance(e, ev.TurnStarted)]
    assert html.count('class="bar ') == len(turns)
    assert not EXTERNAL.search(html) and "<script" not in html and "<link" not in html
    assert "default-src 'none'" in html  # the file may not fetch anything
    for unit in ("flaky", "report", "prepare"):
        assert f'id="unit-{unit}"' in html
    assert "first attempt: failing on purpose" in html and "no secrets in 1 scanned file" in html
    out = uok("report", run_id, "--db", str(db), "--html", "-")
    assert out.returncode == 0 and out.stdout == html


def test_report_as_of_a_past_position(demo):
    _root, db, run_id, events = demo
    third = [p for p, e in events if isinstance(e, ev.TurnStarted)][2]
    r = uok("report", run_id, "--db", str(db), "--html", "-", "--at", str(third))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('class="bar ') == 3 and f"log position {third}" in r.stdout
    assert re.search(r'data-status="running"', r.stdout)  # a turn still in flight then


def test_report_refuses_what_it_must(demo, tmp_path: Path):
    _root, db, run_id, _ = demo
    r = uok("report", run_id, "--db", str(db), "--html", str(db))
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    r = uok("report", "nope", "--db", str(db), "--html", str(tmp_path / "x.html"))
    assert r.returncode == 2 and "no run 'nope'" in r.stderr and not (tmp_path / "x.html").exists()
    r = uok("report", run_id, "--db", str(db), "--html", str(tmp_path / "x.html"), "--at", "99999")
    assert r.returncode == 2 and "outside the log" in r.stderr
    r = uok("report", run_id, "--db", str(db), "--html", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_chaos_injections_are_marked_on_the_timeline(tmp_path: Path):
    import shutil

    from tests.conftest import FIXTURES

    shutil.copytree(FIXTURES / "plans", tmp_path / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    db = tmp_path / "events.db"
    r = uok(
        "run", str(tmp_path / "plan" / "demo.toml"), "--db", str(db), "--quiet", "--chaos", "7", "--chaos-rate", "0.5"
    )
    assert r.returncode in (0, 1), r.stderr  # a partial failure may exhaust a unit's retries
    events = read_events(db)
    chaos = [e for _, e in events if isinstance(e, ev.ChaosInjected)]
    assert chaos, "seed 7 at rate 0.5 injects faults"
    out = uok("report", "latest", "--db", str(db), "--html", "-")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('class="mark chaos"') == len(chaos)
    assert out.stdout.count('class="bar ') == sum(1 for _, e in events if isinstance(e, ev.TurnStarted))
    assert out.stdout == uok("report", "latest", "--db", str(db), "--html", "-").stdout
