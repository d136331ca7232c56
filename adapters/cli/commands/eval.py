"""``uok eval SUITE.toml`` and ``uok eval report``: run cases × variants ×
repetitions as tagged runs, and compare the variants (behaviour §20)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uok.adapters.cli.common import open_log, read_models
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "eval",
        description="""
            Run an eval suite, or report on one. `uok eval SUITE.toml` runs every case of the
            suite under every variant, `repetitions` times, one ordinary run each (repetition by
            repetition, so a drift in the machine's speed falls on every variant alike). Each run
            is tagged with its eval, case, variant and repetition (KernelEntered.flags.eval), so
            the results are a read model of the log and the SQL views eval_runs and eval_variants
            (docs/schema.md). A variant changes a model (UOK_MODEL), a work or model mode, prompt
            files, or any task field (docs/evals.md). Then the report is printed.

            `uok eval report [EVAL]` ranks the variants of EVAL (an eval id, default the latest):
            pass rate (every unit completed, gates passed) with its Wilson 95% interval, mean cost,
            tokens and retries per run and mean duration with t intervals, duration p50/p95, and
            says whether each variant differs significantly from the best (Fisher's exact test for
            pass rates, Welch's t-test for means, p < 0.05). --against names a variant of the same
            eval to compare with instead, another eval id of the same log, or another log file
            (its latest eval of the same suite: two code versions side by side).

            Exit codes: 0 done (whatever the runs' outcomes); 2 bad suite, case plan or usage
            (nothing written); 3 integrity failure.
        """,
        examples="""
            uok eval evals/suite.toml
            uok eval report
            uok eval report e20261130192501-3fa2c1 --json | jq .variants
            uok eval report --against baseline
            uok eval report --against ../before/.uok/events.db
        """,
    )
    p.add_argument("target", metavar="SUITE|report", help="a suite file (TOML) to run, or 'report'")
    p.add_argument("eval_id", nargs="?", metavar="EVAL", help="with report: the eval id (default: latest)")
    p.add_argument(
        "--against",
        metavar="OTHER",
        help="with report: a variant of the same eval, another eval id, or another log file",
    )
    p.add_argument("--workers", type=int, metavar="N", help="parallel units inside each run (default: the suite's)")
    p.add_argument("--config", type=Path, metavar="PATH", help="config file (TOML) of every run, as for uok run")
    p.add_argument("--quiet", action="store_true", help="no line per finished run")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=eval_command)


def eval_command(args: argparse.Namespace) -> int:
    if args.target == "report":
        return _report(args)
    if args.eval_id is not None or args.against is not None:
        raise InputError("EVAL and --against go with `uok eval report`")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from uok.adapters.evals import load_suite, new_eval_id, plan_cells

    from uok import bootstrap

    suite_path = Path(args.target)
    suite = load_suite(suite_path)
    eval_id = new_eval_id()
    cells = plan_cells(suite_path, suite, eval_id, bootstrap.prepare_run, config=args.config)
    workers = args.workers if args.workers is not None else suite.suite.workers
    log = open_log(args, create=True)
    try:
        for i, cell in enumerate(cells, 1):
            result = bootstrap.assemble_runner(log, cell.prepared, workers=workers).run()
            if not args.quiet and not args.json:
                print(
                    f"[{i}/{len(cells)}] {cell.case} × {cell.variant} #{cell.repetition}: "
                    f"run {result.run_id} {result.status}",
                    file=sys.stderr,
                )
            if result.status == "terminated":  # Ctrl-C: stop the eval, keep what was recorded
                break
    finally:
        log.store.close()
    return _print_report(args, eval_id)


def _print_report(args: argparse.Namespace, eval_id: str | None) -> int:
    from uok.adapters.evalreport import render, report
    from uok.adapters.evals import eval_runs, pick_eval

    with read_models(args) as rm:
        runs = eval_runs(rm.runner.states(["evals"]))
    eval_id, mine = pick_eval(runs, eval_id, "the log")
    baseline, other = None, None
    if args.against is not None:
        variants = {r.variant for r in mine}
        if args.against in variants:
            baseline = args.against
        elif any(r.eval_id == args.against for r in runs):
            other = (args.against, [r for r in runs if r.eval_id == args.against])
        elif Path(args.against).is_file():
            other = _other_log(Path(args.against), mine[0].suite)
        else:
            raise InputError(
                f"--against {args.against!r} is neither a variant of eval {eval_id} "
                f"({', '.join(sorted(variants))}), an eval of this log, nor a log file"
            )
    rep = report(eval_id, mine, baseline=baseline, other=other)
    if args.json:
        emit(rep)
    else:
        print(render(rep))
    return 0


def _other_log(path: Path, suite: str):
    from uok.adapters.evals import eval_runs, pick_eval

    from uok import bootstrap

    with bootstrap.read_models(path) as rm:
        runs = eval_runs(rm.runner.states(["evals"]))
    same_suite = [r for r in runs if r.suite == suite]
    eval_id, theirs = pick_eval(same_suite or runs, None, str(path))
    return f"{eval_id} ({path})", theirs


def _report(args: argparse.Namespace) -> int:
    return _print_report(args, args.eval_id)
