"""Live progress for ``uok run``, drawn with rich on stderr.

On a terminal: a bar (units completed / total; units that ended otherwise
are counted beside it, so a run whose units failed never shows a full bar)
plus one line per unit outcome and a line when the plan is paused.
Elsewhere (CI, pipes) rich degrades to the plain lines. ``--quiet`` and
``--json`` runs use :mod:`uok.adapters.cli.progress` and never import rich.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from uok.adapters.cli.progress import requeue_line
from uok.domain import events as ev

_STYLE = {
    "completed": "green",
    "failed": "red",
    "blocked": "yellow",
    "cancelled": "yellow",
    "runaway-recovered": "magenta",
    "stale": "yellow",
}


class RichProgress:
    def __init__(self, console: Console | None = None, settled: Callable[[], tuple[int, int]] | None = None):
        """``settled()`` returns how many of the plan's units completed and
        how many ended otherwise (failed, blocked, …) now, including those
        settled by earlier runs."""
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[running]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.running: set[str] = set()
        self.settled_fn = settled or (lambda: (0, 0))

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def on_events(self, events: list[ev.Event]) -> None:
        for e in events:
            if isinstance(e, ev.PlanCompiled):  # the runner hands observers its graph, held or referenced
                units = len(e.graph.nodes) if e.graph is not None else 0
                self.task = self.progress.add_task(f"plan {e.plan_id}", total=units, running="")
            elif isinstance(e, ev.RunRecovered):
                self.console.print(
                    f"[yellow]recovered run {e.recovered_run} (pid {e.pid} dead); stale: {', '.join(e.stale_units) or 'none'}"
                )
            elif isinstance(e, ev.UnitRequeued):
                self.console.print(f"[cyan]{'requeued':>10}[/] {escape(requeue_line(e))}")
            elif isinstance(e, ev.BreakerHeld):  # not failed: dispatched again at the breaker's probe
                until = f" until {e.until:%H:%M:%S}" if e.until else ""
                self.console.print(f"[yellow]{'held':>10}[/] {e.unit_id}: breaker {e.breaker} open{until}")
            elif isinstance(e, ev.UnitTransitioned) and not (
                e.to_state == "cancelled" and e.reason.startswith("held:")
            ):
                self._unit(e)
            elif isinstance(e, ev.KernelExited):
                colour = "green" if e.status == "ok" and not e.units_failed else "red"
                self.console.print(
                    f"[{colour}]run {e.run_id} exited {e.status}: {e.units_completed} completed, {e.units_failed} failed"
                    + (f" ({e.error})" if e.error else "")
                )
            elif isinstance(e, ev.SteeringApplied) and e.paused is not None:
                word = "paused" if e.paused else "resumed"
                self.console.print(f"[yellow]{word:>10}[/] plan {e.plan_id}: {e.outcome or e.command}")
        if self.task is not None:
            completed, failed = self.settled_fn()
            running = ", ".join(sorted(self.running))[:60]
            shown = (f"[red]{failed} failed[/] " if failed else "") + running
            self.progress.update(self.task, completed=completed, running=shown)

    def _unit(self, e: ev.UnitTransitioned) -> None:
        if e.to_state == "running":
            self.running.add(e.unit_id)
        elif e.to_state == "progress":
            self.console.print(f"[blue]{'progress':>10}[/] {e.unit_id}: {escape(e.reason)}")
        elif e.to_state in _STYLE:
            self.running.discard(e.unit_id)
            style = _STYLE[e.to_state]
            detail = f" ({e.reason})" if e.reason and e.to_state != "completed" else ""
            self.console.print(f"[{style}]{e.to_state:>10}[/] {e.unit_id} attempt {e.attempt}{detail}")
        elif e.to_state == "queued" and e.from_state in ("failed", "stale"):
            self.console.print(f"[cyan]{'retry':>10}[/] {e.unit_id} as attempt {e.attempt}")
