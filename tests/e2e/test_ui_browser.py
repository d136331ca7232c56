"""The web view and the report in real headless Chromium (Debian's
``chromium``, driven by Playwright's Python package; no browser is ever
downloaded). Each test waits on what the page shows, never on a clock.

Screenshots land in ``$UOK_UI_SCREENSHOTS`` when set (``docs/ui`` refreshes
the pictures of docs/ui.md), else in a temporary directory."""

from __future__ import annotations

import os

import pytest
from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import read_events, run_id_of, start_run, task_plan, wait_for
from tests.ui_support import CHROMIUM, CHROMIUM_ARGS, UiServer, demo_log, screenshot_dir

pytestmark = pytest.mark.e2e

WAIT_MS = 60_000  # an upper bound on a busy machine; every wait ends as soon as the page shows the fact


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is missing (apt-get install chromium; .ci/run does)"
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1300, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    db, run_id, events = demo_log(root)
    with UiServer(db) as srv:
        yield root, db, run_id, events, srv


def test_runs_run_timeline_unit_and_time_travel(browser, demo, tmp_path):
    _root, _db, run_id, events, srv = demo
    shots = screenshot_dir(tmp_path)
    turns = [e for _, e in events if isinstance(e, ev.TurnStarted)]
    page = browser.new_page()
    try:
        page.goto(srv.url + "/")
        page.wait_for_selector(f'tr[data-run="{run_id}"]', timeout=WAIT_MS)
        page.screenshot(path=str(shots / "runs.png"), full_page=True)

        page.click(f'tr[data-run="{run_id}"] a.runlink')
        page.wait_for_selector("svg.timeline", timeout=WAIT_MS)
        assert page.locator("svg.timeline rect.bar").count() == len(turns) == 13
        assert page.locator('svg.timeline rect.bar[data-status="retry"]').count() == 1  # flaky's first attempt
        page.screenshot(path=str(shots / "run.png"), full_page=True)

        page.click('#units a.unitlink:text-is("report")')
        page.wait_for_selector(".sec-attempts", timeout=WAIT_MS)
        gates = page.locator("table.gateruns tr[data-gate]")
        assert gates.count() == 2
        assert page.locator('tr[data-gate="security"]').inner_text().count("no secrets") == 1
        assert "exit code 0" in page.locator("tr[data-gate='verification']").inner_text()
        page.screenshot(path=str(shots / "unit.png"), full_page=True)

        page.go_back()
        page.click('#units a.unitlink:text-is("flaky")')
        page.wait_for_selector("pre.log.stdout", timeout=WAIT_MS)
        logs = page.locator("pre.log.stdout").all_inner_texts()
        assert logs[0].strip() == "first attempt: failing on purpose" and logs[1].strip() == "marker present"

        # time travel: the slider to the position where flaky had just failed
        failed_at = next(
            p
            for p, e in events
            if isinstance(e, ev.UnitTransitioned) and e.unit_id == "flaky" and e.to_state == "failed"
        )
        page.goto(f"{srv.url}/runs/{run_id}")
        page.wait_for_selector('tr[data-unit="flaky"] [data-state="completed"]', timeout=WAIT_MS)
        page.evaluate("window.__uokMarker = 'same page'")
        page.fill("#tt-range", str(failed_at))
        page.wait_for_selector('tr[data-unit="flaky"] [data-state="failed"]', timeout=WAIT_MS)
        assert page.evaluate("window.__uokMarker") == "same page", "re-rendered in place, not reloaded"
        assert page.url.endswith(f"?at={failed_at}") and page.evaluate("document.body.dataset.live") == "0"
        assert page.locator('tr[data-unit="report"] [data-state]').get_attribute("data-state") == "queued"
        assert page.locator("svg.timeline rect.bar").count() == 2  # flaky and prepare had started by then
        page.screenshot(path=str(shots / "time-travel.png"), full_page=True)

        page.click("text=diff")
        page.wait_for_selector("#diff-units", timeout=WAIT_MS)
        assert page.locator('#diff-units tr[data-unit="flaky"]').count() == 1
    finally:
        page.close()


def test_report_renders_the_timeline_offline(browser, demo):
    root, db, run_id, events, _srv = demo
    report = root / "report.html"
    r = uok("report", run_id, "--db", str(db), "--html", str(report))
    assert r.returncode == 0, r.stderr
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    browser.set_offline(True)
    try:
        page.goto(report.as_uri())
        bars = page.locator("svg.timeline rect.bar")
        bars.first.wait_for(timeout=WAIT_MS)
        assert bars.count() == sum(1 for _, e in events if isinstance(e, ev.TurnStarted))
        box = bars.first.bounding_box()
        assert box is not None and box["width"] >= 2 and box["height"] > 5  # drawn, not just in the markup
        assert page.locator("svg.graph g.node").count() == 12
        assert requested == [report.as_uri()], requested  # nothing else was even asked for
    finally:
        browser.set_offline(False)
        page.close()


WAIT_FOR = """\
import os, sys, time
path = os.path.join({dir!r}, {name!r})
deadline = time.monotonic() + 300
while not os.path.exists(path):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.05)
"""


def test_a_live_run_page_updates_as_units_complete(browser, tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    plan = task_plan(
        tmp_path / "live.toml",
        [(u, WAIT_FOR.format(dir=str(gates), name=f"go-{u}")) for u in ("first", "second")],
        plan_id="live",
    )
    db = tmp_path / "events.db"
    run = start_run(plan, db)
    try:
        run_id = run_id_of(db)
        wait_for(
            lambda: any(isinstance(e, ev.TurnStarted) and e.unit_id == "first" for _, e in read_events(db)),
            timeout=60,
            what="the first unit to start",
        )
        with UiServer(db) as srv:
            page = browser.new_page()
            try:
                page.goto(f"{srv.url}/runs/{run_id}")
                page.wait_for_selector('tr[data-unit="first"] [data-state="running"]', timeout=WAIT_MS)
                assert page.evaluate("document.body.dataset.live") == "1"
                assert page.locator("svg.timeline rect.bar").count() == 1
                page.evaluate("window.__uokMarker = 'same page'")

                (gates / "go-first").touch()
                page.wait_for_selector('tr[data-unit="first"] [data-state="completed"]', timeout=WAIT_MS)
                page.wait_for_selector('tr[data-unit="second"] [data-state="running"]', timeout=WAIT_MS)
                assert page.locator("svg.timeline rect.bar").count() == 2

                (gates / "go-second").touch()
                page.wait_for_selector('tr[data-unit="second"] [data-state="completed"]', timeout=WAIT_MS)
                page.wait_for_selector("h1 .status.s-ok", timeout=WAIT_MS)  # the run's exit, live too
                assert page.evaluate("window.__uokMarker") == "same page", "updated in place, never reloaded"
            finally:
                page.close()
        assert run.wait(timeout=120) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for f in (run.stdout, run.stderr):
            f.close()
