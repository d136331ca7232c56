"""``uok report RUN --html FILE``: one run's page as a single HTML file.

The same templates as the web view, with the stylesheet inlined, every
unit's detail (attempts, phases, gate runs, output, cost, lifecycle) below
the timeline and graph, links that are anchors in the file, and a
Content-Security-Policy that forbids every network request: the file opens
anywhere, offline, and can be attached to a pull request or an audit.

Deterministic: the same log (up to the same position) gives the same bytes.
Nothing in it comes from the clock, the environment or the file system: the
footer names the log position and its chain hash, which pin the history the
report shows.
"""

from __future__ import annotations

from markupsafe import Markup
from uok.adapters.runread import RunReader
from uok.adapters.web.pages import load_run, report_units, run_page
from uok.adapters.web.render import render, static_text

from uok import __version__


def anchor(unit_id: str, turn_id: str) -> str:
    return f"#turn-{turn_id}" if turn_id else f"#unit-{unit_id}"


def report_html(reader: RunReader, run_id: str, position: int) -> str:
    with reader.lock:
        loaded = load_run(reader, run_id, position)
        ctx = run_page(loaded, anchor)
        ctx["unit_pages"] = report_units(reader, loaded, anchor)
        digest = reader.store.read(position - 1, upto=position) if position else iter(())
        head_hash = next((r.hash.hex() for r in digest), "")
        ctx.update(
            report=True,
            live=False,
            position=position,
            head=position,
            inline_css=Markup(static_text("uok.css")),
            version=__version__,
            head_hash=head_hash,
        )
        return render("report.html", ctx)
