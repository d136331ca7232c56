"""How fast the web view, the report and the trace export answer on a
1,000,000-event kernel log.

    python bench/ui.py [--events N] [--repeat R]

The log comes from ``bench/kernel_log.py`` (every decision taken by the real
kernel), cached as ``bench/out/kernel-<N>.db``. Everything is measured in
process, from the page's data to its HTML (what one request costs the
server, without HTTP): the read models are caught up once first (what ``uok
ui`` does at start, timed separately), then each figure is the median of R
renders.

Figures:
  runs list        the newest 200 runs with units by state, turns and cost
  run (live)       the last run's page at the head, its timeline cached and
                   folded forward (what a live page's refresh costs)
  run (at P)       a run in the middle of the log as of a position inside it
                   (time travel: its timeline folded from zero)
  unit             one unit's page (attempts, phases, gate runs, lifecycle)
  diff             the diff between positions at 10 % and 90 % of the log
  metrics          the metrics page (snapshot + histograms)
  report           ``uok report`` of the last run (whole file)
  trace            the last run's spans (``uok trace``, built, not sent)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uok.adapters.projection_store import SqliteProjectionStore
from uok.adapters.runread import RunReader
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.web import pages
from uok.adapters.web.app import unit_href
from uok.adapters.web.render import render
from uok.adapters.web.report import report_html
from uok.projections import registry
from uok.projections.runner import ProjectionRunner

from bench.kernel_log import cached


def timed(fn, repeat: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def page(template: str, ctx: dict, position: int) -> str:
    return render(template, {**ctx, "position": position, "head": position, "live": True})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    db = cached(ROOT / "bench" / "out" / f"kernel-{args.events // 1000}k.db", args.events, seed=args.seed)
    store = SqliteEventStore(db, synchronous="NORMAL")
    pstore = SqliteProjectionStore(store)
    runner = ProjectionRunner(pstore, pstore, registry.ALL)
    t = time.perf_counter()
    runner.catch_up()
    caught_up = time.perf_counter() - t
    reader = RunReader(store, runner, verified=store.head()[0])
    head = reader.head()
    runs = sorted(reader.states(head, ["runs"])["runs"].values(), key=lambda r: r.entered_position)
    last, middle = runs[-1], runs[len(runs) // 2]
    past = (middle.entered_position + (middle.exit_position or head)) // 2
    rows = []

    def add(what: str, seconds: float, html: str | bytes | None = None, note: str = "") -> None:
        size = f"{len(html):,} B" if html is not None else ""
        rows.append((what, seconds, size, note))

    s, html = timed(lambda: page("runs.html", pages.runs_page(reader, head), head), args.repeat)
    add("runs list", s, html, f"{len(runs):,} runs")
    href = unit_href(last.run_id, None)
    reader.timeline(last.run_id, head)  # a live page: the timeline is cached, later refreshes fold what is new
    s, html = timed(
        lambda: page("run.html", pages.run_page(pages.load_run(reader, last.run_id, head), href), head), args.repeat
    )
    turns = len(reader.timeline(last.run_id, head).turns)
    add("run (live)", s, html, f"{turns:,} turns")
    s, html = timed(
        lambda: page("run.html", pages.run_page(pages.load_run(reader, middle.run_id, past), href), past), args.repeat
    )
    add("run (at P)", s, html, f"position {past:,}")
    unit = next(iter(reader.timeline(last.run_id, head).turns.values())).unit_id
    s, html = timed(
        lambda: page("unit.html", pages.unit_page(reader, pages.load_run(reader, last.run_id, head), unit, href), head),
        args.repeat,
    )
    add("unit", s, html, unit)
    a, b = head // 10, head * 9 // 10
    s, html = timed(lambda: page("diff.html", pages.diff_page(reader, a, b), head), args.repeat)
    add("diff", s, html, f"{a:,} -> {b:,}")
    s, html = timed(lambda: page("stats.html", pages.stats_page(reader, head), head), args.repeat)
    add("metrics", s, html)
    s, html = timed(lambda: report_html(reader, last.run_id, head), args.repeat)
    add("report", s, html)
    try:
        from uok.adapters.otel.export import run_spans

        s, spans = timed(lambda: run_spans(reader.timeline(last.run_id, head)), args.repeat)
        add("trace", s, None, f"{len(spans):,} spans")
    except ModuleNotFoundError:
        add("trace", float("nan"), None, "otel extra missing")
    print(f"log: {db.name}, {head:,} events; read models caught up from their stored positions in {caught_up:.1f} s\n")
    print("| page | median | size | |")
    print("|---|---:|---:|---|")
    for what, seconds, size, note in rows:
        print(f"| {what} | {seconds * 1000:,.0f} ms | {size} | {note} |")
    store.close()


if __name__ == "__main__":
    main()
