"""``uok projections status|rebuild``: the read models' positions, and
rebuilding them from zero."""

from __future__ import annotations

import argparse
import os
import signal
import time

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_action, add_actions, add_command
from uok.adapters.cli.output import emit
from uok.adapters.readmodels import projection_names

from uok.errors import InputError

KILL_ENV = "UOK_REBUILD_KILL_AFTER_BATCHES"
"""Test hook: SIGKILL this process once it has committed that many batches
and folded part of the next one, so tests can interrupt a rebuild at an
exact point without racing a timer."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "projections",
        description="""
            Projections are the read models folded from the log (units, runs, turns, gates,
            costs, breakers, inboxes). Each keeps its position in the log file and catches up
            from there; commands that read them catch them up first.
        """,
        examples="""
            uok projections status
            uok projections rebuild
            uok projections rebuild units runs --batch 50000
        """,
    )
    psub = add_actions(p, "projections_command")

    s = add_action(
        psub,
        "status",
        help="each projection's position and lag (log head - position)",
        description="""
            Show each projection's version, tracked position, lag behind the log head, parts
            and snapshots. Changes nothing.
        """,
        examples="""
            uok projections status
            uok projections status --json | jq '.projections[] | {name, lag}'
        """,
    )
    s.add_argument("--json", action="store_true", help="one JSON object: projections, storage_bytes")
    s.set_defaults(func=status)

    r = add_action(
        psub,
        "rebuild",
        help="rebuild read models from position zero",
        description="""
            Forget the named projections (all by default) and fold the whole log again,
            committing every --batch events. A rebuild that was interrupted (killed, power
            loss) resumes from its last committed position when run again; --restart starts
            it over from zero.
        """,
        examples="""
            uok projections rebuild
            uok projections rebuild units --restart --quiet
            uok projections rebuild --json
        """,
    )
    r.add_argument("names", nargs="*", metavar="NAME", help="projections to rebuild (default: all)")
    r.add_argument("--restart", action="store_true", help="start from zero even if an interrupted rebuild could resume")
    r.add_argument("--batch", type=int, metavar="N", help="commit every N events (default 10000)")
    r.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="snapshot every N events (default $UOK_SNAPSHOT_EVERY, else 10000)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="one JSON object: position, projections, resumed_from, seconds")
    r.set_defaults(func=rebuild)


def status(args: argparse.Namespace) -> int:
    with read_models(args, readonly=True) as rm:
        rows = rm.runner.status()
        storage = rm.pstore.storage()
    if args.json:
        emit({"projections": [_row(s) for s in rows], "storage_bytes": storage})
        return 0
    head = rows[0].head if rows else 0
    print(f"log head: position {head}")
    print(f"{'projection':<12} {'version':>7} {'position':>10} {'lag':>10} {'parts':>7} {'snapshots':>9}  state")
    for s in rows:
        print(f"{s.name:<12} {s.version:>7} {s.position:>10} {s.lag:>10} {s.parts:>7} {s.snapshots:>9}  {_state(s)}")
    print(f"storage: parts {storage['parts']:,} B, snapshots {storage['manifests'] + storage['blobs']:,} B")
    return 0


def _state(s) -> str:
    if s.stored_version is None:
        return "never built"
    if s.stored_version != s.version:
        return f"stored v{s.stored_version}: will rebuild"
    if s.rebuilding:
        return "rebuild interrupted: `uok projections rebuild` resumes it"
    return "up to date" if s.lag == 0 else "behind"


def _row(s) -> dict:
    return {
        "name": s.name,
        "version": s.version,
        "stored_version": s.stored_version,
        "position": s.position,
        "head": s.head,
        "lag": s.lag,
        "rebuilding": s.rebuilding,
        "parts": s.parts,
        "snapshots": s.snapshots,
        "state": _state(s),
    }


def rebuild(args: argparse.Namespace) -> int:
    names = projection_names(args.names)
    for opt in ("batch", "snapshot_every"):
        v = getattr(args, opt)
        if v is not None and v <= 0:
            raise InputError(f"--{opt.replace('_', '-')} must be positive")
    kill_after = _kill_hook()
    commits = [0]
    pages_after = [0]

    def on_commit(n: int) -> None:
        commits[0] = n
        pages_after[0] = 0

    with read_models(args, batch=args.batch, snapshot_every=args.snapshot_every) as rm:
        head = rm.head()
        started = time.perf_counter()
        progress_cb, bar = _progress(args, head)

        def progress(pos: int, target: int) -> None:
            if kill_after is not None and commits[0] >= kill_after:
                pages_after[0] += 1
                if pages_after[0] >= 1:
                    os.kill(os.getpid(), signal.SIGKILL)
            if progress_cb is not None:
                progress_cb(pos, target)

        try:
            position, began = rm.runner.rebuild(names, restart=args.restart, progress=progress, on_commit=on_commit)
        finally:
            if bar is not None:
                bar.stop()
        elapsed = time.perf_counter() - started
    folded = position - min(began.values(), default=0)
    rate = folded / elapsed if elapsed > 0 else 0.0
    resumed = {n: p for n, p in began.items() if p}
    if args.json:
        out = {
            "position": position,
            "projections": sorted(began),
            "resumed_from": resumed,
            "seconds": round(elapsed, 3),
            "events_per_second": round(rate),
        }
        emit(out)
        return 0
    for n, p in sorted(resumed.items()):
        print(f"{n}: resumed an interrupted rebuild at position {p}")
    print(f"rebuilt {len(began)} projection(s) to position {position} in {elapsed:.2f} s ({rate:,.0f} events/s)")
    return 0


def _kill_hook() -> int | None:
    raw = os.environ.get(KILL_ENV)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{KILL_ENV} must be an integer") from None


def _progress(args: argparse.Namespace, head: int):
    if args.quiet or args.json:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]rebuild"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("rebuild", total=max(head, 1))
    bar.start()

    def update(pos: int, target: int) -> None:
        bar.update(task, completed=pos, total=max(target, 1))

    return update, bar
