"""``uok run PLAN``: drive a plan through the kernel, recording everything."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "run",
        description="""
            Compile PLAN into a unit graph and run it: ready units are dispatched to up to N
            parallel workers, every transition and turn is appended to the event log.
            Re-running the same plan on the same log resumes it: completed units do not run
            again, and a run left open by a crash is closed as 'recovered'. Units that ended
            failed or blocked are queued again (a fresh retry budget; the runaway cap,
            max_dispatches, keeps counting), and so is a task whose definition changed since it
            ran (command, env, gates, writes, timeout, prompt, ...), with what depends on it:
            each re-queue is recorded and printed with its reason. `uok retry` re-queues named
            units, or runaway-recovered ones, with a new budget.

            Without --db or $UOK_DB the log is the nearest .uok/events.db in the working
            directory or a parent; if there is none, .uok/events.db is created in the working
            directory (with a .gitignore, so it is never committed).

            Ctrl-C (SIGINT) or SIGTERM stops the run gracefully: each running task's process
            group gets SIGTERM, then SIGKILL after its grace period (--grace); a second Ctrl-C
            kills at once. Every task's stdout and stderr are kept (`uok logs`).

            Exit codes: 0 all units completed; 1 some unit failed, was blocked, or the run ended
            in error; 2 bad plan or usage (nothing written); 3 integrity failure; 130 stopped by
            Ctrl-C (143 by SIGTERM).
        """,
        examples="""
            uok run fixtures/plans/demo.toml
            uok run plan.toml --workers 4 --quiet
            uok run plan.toml --json                # the run's result as one JSON object
            uok --db /tmp/try.db run plan.toml --config ci.toml
            uok run plan.toml --chaos 7 --chaos-rate 0.3
            uok run plan.toml --model-mode fast    # each task gets the model [uok.models] names for fast
            uok run plan.toml --gitops commit       # one commit per unit, exactly its files
            uok --db postgresql://db/uok run plan.toml --claims --workers 8   # `uok worker` on other hosts runs units
        """,
    )
    p.add_argument("plan", metavar="PLAN", help="plan file (TOML): milestones → slices → tasks")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="parallel units, clamped to 1..8 (default 2)")
    p.add_argument(
        "--synchronous",
        choices=["FULL", "NORMAL"],
        default="FULL",
        help="SQLite durability: FULL (default) survives power loss; NORMAL may lose the last commits",
    )
    p.add_argument(
        "--claims",
        action="store_true",
        help="run no unit's command here: `uok worker` processes (this host or others sharing the log, "
        "PostgreSQL for several hosts) claim the dispatched units through the log under a lease; --workers N "
        "bounds how many are dispatched at once (see docs/scale-out.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the run's result as one JSON object (run_id, status, units_completed, units_failed, signal, "
        "error, exit_code); no progress display",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="config file (TOML); default: uok.toml or [tool.uok] in pyproject.toml, in the plan's "
        "directory, else the working directory (see docs/gates.md); a bad config exits 2",
    )
    p.add_argument(
        "--gitops",
        nargs="?",
        const="config",
        choices=["config", "commit", "snapshot", "status-only"],
        metavar="ACTION",
        help="record each turn's git transaction when the plan's directory is a git "
        "work tree, with turn action commit | snapshot | status-only (default: [uok.gitops] "
        "turn_action); off unless given (see docs/bus-and-steering.md)",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="with --gitops commit: start even though the work tree has uncommitted changes (they are left "
        "out of every unit's commit; without this flag such a run refuses to start, exit 2)",
    )
    p.add_argument(
        "--writer-ttl",
        type=float,
        metavar="SECONDS",
        help="writer-token TTL after which a dead holder's token is reclaimed (default 300)",
    )
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="grace period of a stopped task (timeout, cancel, Ctrl-C): SIGTERM to its process group, "
        "SECONDS to exit, then SIGKILL (default 10; a task's own 'grace' wins; see docs/tasks.md)",
    )
    p.add_argument(
        "--chaos",
        type=int,
        metavar="SEED",
        help="inject seeded, recoverable faults (latency, partial failure, disk and memory stress) at "
        "phase boundaries; each is recorded before it takes effect, so the run replays exactly "
        "(see docs/reliability.md; also [uok.chaos] in the config; off by default)",
    )
    p.add_argument(
        "--chaos-rate",
        type=float,
        metavar="R",
        help="with --chaos: probability of a fault at each boundary, 0..1 (default 0.2)",
    )
    p.add_argument(
        "--work-mode",
        metavar="M",
        help="the run's work mode, recorded and handed to tasks as UOK_WORK_MODE (default: [uok] work_mode, else auto)",
    )
    p.add_argument(
        "--model-mode",
        metavar="N",
        help="the run's model mode: tasks get UOK_MODEL_MODE and the model [uok.models] routes it to as UOK_MODEL "
        "(default: [uok] model_mode, else default; see docs/tasks.md)",
    )
    p.add_argument(
        "--permission-profile",
        metavar="P",
        help="the run's permission profile: restricted (read-only: a unit may change no file), strict (only the "
        "paths it declares), standard (default), trusted; restricted and strict are checked against each turn's "
        "real change set (docs/tasks.md)",
    )
    p.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="stream the run's OpenTelemetry spans to this OTLP/HTTP collector as turns finish "
        "(the spans `uok trace` exports; needs the 'otel' extra)",
    )
    p.set_defaults(func=run)


def report_clamp(workers: int) -> None:
    """Say so when ``--workers`` is outside 1..8 (the run uses the clamped value)."""
    from uok.adapters.cli.output import err
    from uok.domain.plan.graph import clamp_workers

    used = clamp_workers(workers)
    if used != workers:
        err(f"--workers {workers} is outside 1..8: running with {used} workers")


def live_tracer(args: argparse.Namespace):
    if not getattr(args, "otlp_endpoint", None):
        return None
    from uok.adapters.cli.commands.ui import extra_module

    return extra_module("uok.adapters.otel.export", "otel").LiveTracer(args.otlp_endpoint)


def run(args: argparse.Namespace) -> int:
    from uok import bootstrap

    chaos = {"seed": args.chaos, "rate": args.chaos_rate} if args.chaos is not None else None
    if chaos is None and args.chaos_rate is not None:
        raise InputError("--chaos-rate needs --chaos SEED")
    # run flags, recorded in KernelEntered (uok.adapters.observer.build_turn_hooks); uok retry adds "retry"
    flags: dict = dict(getattr(args, "run_flags", None) or {})
    if chaos is not None:
        flags["chaos"] = chaos  # uok.adapters.chaos resolves it over [uok.chaos]
    if args.gitops:
        flags["gitops"] = True
        if args.gitops != "config":
            flags["gitops_turn_action"] = args.gitops
    if args.claims:
        flags["claims"] = True  # recorded in KernelEntered: workers find the run by it (uok.adapters.worker)
    if args.allow_dirty:
        flags["allow_dirty"] = True  # recorded in KernelEntered (uok.adapters.gitpublish)
    if args.writer_ttl is not None:
        if not args.writer_ttl > 0:
            raise InputError(f"--writer-ttl must be > 0 seconds, got {args.writer_ttl:g}")
        flags["writer_ttl"] = args.writer_ttl
    if args.grace is not None:
        if not (args.grace >= 0 and args.grace != float("inf")):
            raise InputError(f"--grace must be a number of seconds >= 0, got {args.grace:g}")
        flags["grace_period"] = args.grace
    for key in ("work_mode", "model_mode", "permission_profile"):
        value = getattr(args, key)
        if value is not None:
            if not value.strip():
                raise InputError(f"--{key.replace('_', '-')} must not be empty")
            flags[key] = value.strip()
    # plan, config, gates and chaos settings are checked before the log is even
    # opened: bad input (exit 2) writes nothing
    prepared = bootstrap.prepare_run(Path(args.plan), flags=flags, config=args.config)
    report_clamp(args.workers)
    tracer = live_tracer(args)  # --otlp-endpoint: spans streamed as turns finish (uok.adapters.otel.export)
    log = open_log(args, create=True, synchronous=args.synchronous)
    try:
        if args.quiet or args.json:
            from uok.adapters.cli.progress import RequeueLines

            quiet = None if args.json else RequeueLines()  # a re-queue is always said, with why
            observer = tracer.also(quiet) if tracer is not None and quiet is not None else (tracer or quiet)
            result = bootstrap.assemble_runner(log, prepared, workers=args.workers, observer=observer).run()
        else:
            from uok.adapters.cli.rich_progress import RichProgress

            progress = RichProgress()
            observer = tracer.also(progress) if tracer is not None else progress
            runner = bootstrap.assemble_runner(log, prepared, workers=args.workers, observer=observer)
            progress.settled_fn = runner.unit_tally
            with progress:
                result = runner.run()
    finally:
        log.store.close()
        if tracer is not None:
            tracer.close()
    if args.json:
        emit({**msgspec.structs.asdict(result), "exit_code": result.exit_code})
    else:
        print(
            f"run {result.run_id}: {result.status}, {result.units_completed} completed, "
            f"{result.units_failed} failed or blocked"
        )
    return result.exit_code
