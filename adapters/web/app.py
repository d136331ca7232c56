"""``uok ui``: the local, read-only web view (Starlette, served by uvicorn).

Pages: runs (``/``), a run (``/runs/ID``: timeline, unit graph, units), a
unit (``/runs/ID/units/UNIT``: attempts, phases, gate runs, output, cost,
lifecycle), a diff between two positions (``/diff``), breakers, metrics
(``/stats``; the Prometheus exposition itself at ``/metrics``), the bus, and
a read-only SQL box over the DuckDB views (``/sql``).

Every page takes ``?at=P`` and is then the page as of log position P: the
same read models ``uok state --at P`` reads, never a re-run. Without it the
page is *live*: it opens a server-sent-event stream (``/api/stream``) that
reports each new head of the log, and the page's script re-renders the
page's main part in place (``X-Uok-Partial``), without a reload.

Nothing here appends to the log. Requests are served one at a time under
the reader's lock (the read models share one cache); the event stream
only reads the head.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uok.adapters.runread import PositionOutsideLog, RunReader
from uok.adapters.web import pages
from uok.adapters.web.render import render
from uok.adapters.web.report import report_html
from uok.adapters.web.sql import SqlBox
from uok.domain.log.chain import ChainBroken

from uok.errors import InputError

POLL_SECONDS = 5.0  # longest wait for a commit before looking again (woken at once by one)
"""How often the event stream looks at the log's head (SQLite has no
cross-process notification; a look is one indexed query)."""


class BadRequest(InputError):
    """A malformed query parameter (answered 400)."""


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a log position") from None


def unit_href(run_id: str, position: int | None) -> pages.Href:
    suffix = f"?at={position}" if position is not None else ""

    def href(unit_id: str, turn_id: str) -> str:
        base = f"/runs/{quote(run_id, safe='')}/units/{quote(unit_id, safe='')}{suffix}"
        return base + (f"#turn-{quote(turn_id, safe=':')}" if turn_id else "")

    return href


class WebView:
    """The routes, over one :class:`RunReader`."""

    def __init__(self, reader: RunReader, *, sql: SqlBox | None = None, poll: float = POLL_SECONDS):
        self.reader = reader
        self.sql = sql
        self.poll = poll

    # -- plumbing ------------------------------------------------------------------
    def _page(
        self,
        request: Request,
        template: str,
        build: Callable[[int, int | None], dict[str, Any]],
        nav: str = "",
    ) -> Response:
        partial = request.headers.get("x-uok-partial") == "1"
        try:
            at = _int(request, "at")
            with self.reader.lock:
                head = self.reader.refresh()
                position = self.reader.check(at)
                ctx = build(position, at)
                ctx.update(self._common(request, position, head, at, nav))
                html = render(template, ctx, partial=partial)
        except (BadRequest, PositionOutsideLog) as e:
            return self._error(request, 400, str(e), partial)
        except pages.NotFound as e:
            return self._error(request, 404, str(e), partial)
        except ChainBroken as e:
            return self._error(request, 500, f"the event log's hash chain is broken: {e}", partial)
        headers = {
            "Cache-Control": "no-store",
            "X-Uok-Live": "1" if at is None else "0",
            "X-Uok-Position": str(position),
            "X-Uok-Head": str(head),
        }
        return HTMLResponse(html, headers=headers)

    def _common(self, request: Request, position: int, head: int, at: int | None, nav: str) -> dict[str, Any]:
        others = [(k, v) for k, v in request.query_params.multi_items() if k != "at" and v]

        def link(path: str) -> str:
            if at is None:
                return path
            return f"{path}{'&' if '?' in path else '?'}at={at}"

        return {
            "position": position,
            "head": head,
            "live": at is None,
            "nav": nav,
            "link": link,
            "query_without_at": urlencode(others),
        }

    def _error(self, request: Request, code: int, message: str, partial: bool = False) -> Response:
        try:
            head = self.reader.head()
        except Exception:  # noqa: BLE001 - the error page must render whatever broke
            head = 0
        ctx = {"code": code, "message": message, "position": head, "head": head, "live": False}
        return HTMLResponse(render("error.html", ctx, partial=partial), status_code=code)

    # -- pages ---------------------------------------------------------------------
    def runs(self, request: Request) -> Response:
        status, plan = request.query_params.get("status", ""), request.query_params.get("plan", "")
        return self._page(
            request, "runs.html", lambda p, _at: pages.runs_page(self.reader, p, status=status, plan=plan), "runs"
        )

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        def build(p: int, at: int | None) -> dict[str, Any]:
            return pages.run_page(pages.load_run(self.reader, run_id, p), unit_href(run_id, at))

        return self._page(request, "run.html", build, "runs")

    def unit(self, request: Request) -> Response:
        run_id, unit_id = request.path_params["run_id"], request.path_params["unit_id"]

        def build(p: int, at: int | None) -> dict[str, Any]:
            loaded = pages.load_run(self.reader, run_id, p)
            return pages.unit_page(self.reader, loaded, unit_id, unit_href(run_id, at))

        return self._page(request, "unit.html", build, "runs")

    def report(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            at = _int(request, "at")
            with self.reader.lock:
                self.reader.refresh()
                html = report_html(self.reader, run_id, self.reader.check(at))
        except (BadRequest, PositionOutsideLog) as e:
            return self._error(request, 400, str(e))
        except pages.NotFound as e:
            return self._error(request, 404, str(e))
        name = f"uok-report-{run_id}.html".replace("/", "_")
        return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def diff(self, request: Request) -> Response:
        run = request.query_params.get("run", "").strip() or None

        def build(p: int, _at: int | None) -> dict[str, Any]:
            a, b = _int(request, "from"), _int(request, "to")
            a = self.reader.check(0 if a is None else a)
            b = self.reader.check(p if b is None else b)
            return pages.diff_page(self.reader, a, b, run)

        return self._page(request, "diff.html", build)

    def breakers(self, request: Request) -> Response:
        return self._page(request, "breakers.html", lambda p, _at: pages.breakers_page(self.reader, p), "breakers")

    def stats(self, request: Request) -> Response:
        return self._page(request, "stats.html", lambda p, _at: pages.stats_page(self.reader, p), "stats")

    def evals(self, request: Request) -> Response:
        return self._page(request, "evals.html", lambda p, _at: pages.evals_page(self.reader, p), "evals")

    def bus(self, request: Request) -> Response:
        return self._page(request, "bus.html", lambda p, _at: pages.bus_page(self.reader, p), "bus")

    def sql_page(self, request: Request) -> Response:
        query = request.query_params.get("q", "")

        def build(_p: int, _at: int | None) -> dict[str, Any]:
            if self.sql is None:
                return {"query": query, "error": "SQL needs a SQLite event log file", "result": None,
                        "truncated": False, "schema": []}  # fmt: skip
            return {"query": query, **self.sql.answer(query)}

        return self._page(request, "sql.html", build, "sql")

    def metrics(self, request: Request) -> Response:
        """The Prometheus exposition as of the head, negotiated by
        prometheus_client (OpenMetrics when asked); HEAD comes with GET."""
        from prometheus_client.exposition import choose_encoder
        from uok.adapters.metrics_http import registry_of
        from uok.projections.metrics import SOURCES, snapshot

        with self.reader.lock:
            head = self.reader.refresh()
            snap = snapshot(self.reader.states(head, list(SOURCES)), head)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry_of(lambda: snap)), headers={"Content-Type": content_type})

    # -- live ------------------------------------------------------------------------
    async def head(self, request: Request) -> Response:
        return JSONResponse({"head": await run_in_threadpool(self.reader.head)})

    async def stream(self, request: Request) -> Response:
        """``event: position`` with the log's head, each time it moves past
        ``after`` (at once if it already has)."""
        try:
            after = _int(request, "after") or 0
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=400)

        async def positions():
            # Woken by the store's commit listener (LISTEN/NOTIFY on
            # PostgreSQL); ``poll`` bounds each blocking wait so a closed
            # page releases its thread soon.
            seen = after
            listener = await run_in_threadpool(self.reader.store.listen)
            try:
                while True:
                    head = await run_in_threadpool(listener.wait, seen, self.poll)
                    if head != seen:
                        seen = head
                        yield {"event": "position", "data": str(head)}
            finally:
                listener.close()

        return EventSourceResponse(positions(), ping=10, headers={"Cache-Control": "no-store"})


def create_app(view: WebView) -> Starlette:
    static = Path(__file__).with_name("static")
    routes = [
        Route("/", view.runs),
        Route("/runs/{run_id}", view.run),
        Route("/runs/{run_id}/report.html", view.report),
        Route("/runs/{run_id}/units/{unit_id:path}", view.unit),
        Route("/diff", view.diff),
        Route("/breakers", view.breakers),
        Route("/stats", view.stats),
        Route("/bus", view.bus),
        Route("/evals", view.evals),
        Route("/sql", view.sql_page),
        Route("/metrics", view.metrics),
        Route("/api/head", view.head),
        Route("/api/stream", view.stream),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    return Starlette(routes=routes)
