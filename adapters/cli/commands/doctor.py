"""``uok doctor``: is this installation healthy, running, quiet, degraded or
in need of repair, and what to do about each finding (behaviour §14)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from uok.adapters.cli.common import log_target, shown
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError

CLASSIFICATION = """\
classification (first match wins; exit 0 for the first three, 1 otherwise):
  needs-repair       log unusable, orphaned run (pid dead), in-flight units with no live run
  degraded           open breakers, stuck units, repeated gate failures, runs ended error,
                     failed (units did not complete) or recovered with no clean run since,
                     interrupted projection rebuild
  running            a live run made progress in the last 5 minutes
  quiet-but-healthy  a live run is quiet but its tasks are still within their limits
  healthy            no live run, no issues
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "doctor",
        description="""
            Correlate runs without an exit and whether their pids are alive, units stuck in
            flight beyond their task timeout, open breakers, failing gates, parity findings and
            projection lag into one classification, with a recommended command per finding.
        """,
        examples="""
            uok doctor
            uok doctor --json | jq .diagnosis.classification
            uok doctor --now 2026-01-01T12:00:00+00:00 --publish
        """,
        notes=CLASSIFICATION,
    )
    p.add_argument("--json", action="store_true", help="one JSON object: db, diagnosis, facts")
    p.add_argument(
        "--now",
        metavar="ISO-8601",
        help="judge ages as of this time, e.g. 2026-01-01T12:00:00+00:00 (default: the clock)",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="also send the diagnosis on the message bus (uok-doctor -> observers, topic diagnosis)",
    )
    p.set_defaults(func=doctor)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--now {text!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        raise InputError(f"--now {text!r} needs a time zone (e.g. +00:00)")
    return t


def doctor(args: argparse.Namespace) -> int:
    from uok.adapters.doctor import gather
    from uok.domain.policies.diagnosis import diagnose

    db = log_target(args)
    if isinstance(db, Path) and not db.exists():
        raise InputError(f"no event log at {db} (run `uok run PLAN` first, or pass --db)")
    if isinstance(db, Path) and db.is_dir():
        raise InputError(f"{db} is a directory, not an event log")
    facts = gather(db, _now(args.now))
    d = diagnose(facts)
    if args.publish and facts.db_ok:
        _publish(args, d)
    if args.json:
        emit({"db": shown(db), "diagnosis": d, "facts": facts})
        return d.exit_code
    print(f"uok doctor: {d.classification} — {d.summary}")
    if d.live_runs:
        print(f"live runs: {', '.join(d.live_runs)}")
    if not d.findings:
        print("no findings")
    for f in d.findings:
        print(f"  [{f.severity}] {f.code} {f.subject}: {f.message}")
        print(f"      -> {f.recommendation}")
    return d.exit_code


def _publish(args: argparse.Namespace, d) -> None:
    from uok.adapters.bus import MessageBus
    from uok.adapters.cli.common import open_log

    log = open_log(args)
    try:
        MessageBus(log).send(
            "uok-doctor",
            "observers",
            "diagnosis",
            {
                "classification": d.classification,
                "findings": [{"severity": f.severity, "code": f.code, "subject": f.subject} for f in d.findings],
            },
        )
    finally:
        log.store.close()
