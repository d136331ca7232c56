"""``uok verify``: the deep integrity check of an event log.

Every reading command already recomputes the hash chain as it reads, and
SQLite refuses pages it can see are damaged. What neither notices is damage
confined to an index (the ``(stream, version)`` uniqueness index, say): the
rows are intact, but lookups through the index are wrong, and a later
append could write a duplicate version. ``uok verify`` runs SQLite's full
``integrity_check`` (tables against indexes) and the chain from genesis.
Run it after a crash of the host, a restore from backup, or before trusting
a copied log.
"""

from __future__ import annotations

import argparse
import time

from uok.adapters.cli.common import open_store
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import IntegrityFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "verify",
        description="""
            Check an event log end to end: SQLite's integrity_check (every page, every index
            against its table) and the SHA-256 hash chain from genesis to the head.
            Exit 0 if both pass, 3 (one line naming the problem) if either fails.
            With --export, check an audit export instead (docs/audit.md).
        """,
        examples="""
            uok verify
            uok verify --db backup/events.db --json
            uok verify --export audit.jsonl               # the export alone, by its manifest
            uok verify --export run.parquet --db .uok/events.db   # and against the log
        """,
    )
    p.add_argument("--json", action="store_true", help="one JSON object: ok, events, head, seconds")
    p.add_argument(
        "--export",
        metavar="PATH",
        help="verify an audit export (`uok export`) instead, using its manifest; with --db also "
        "check its events are the log's (docs/audit.md)",
    )
    p.set_defaults(func=verify)


def verify(args: argparse.Namespace) -> int:
    from uok.domain.log.chain import ChainBroken

    if getattr(args, "export", None):
        from uok.adapters.cli.commands.export import verify_export_cli

        return verify_export_cli(args)
    store = open_store(args, readonly=True)
    try:
        started = time.perf_counter()
        problems = store.integrity_problems()
        problems += getattr(store, "anchor_problems", list)()  # SQLite: committed events a lost -wal took
        if problems:
            raise IntegrityFailure(f"{store.location}: {'; '.join(problems[:3])}")
        try:
            count, head = store.verify_chain()
        except ChainBroken as exc:
            raise IntegrityFailure(f"{store.location}: {exc}") from None
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    result = {"ok": True, "events": count, "head": head.hex(), "seconds": round(elapsed, 3)}
    if args.json:
        emit(result)
    else:
        what = "SQLite integrity ok" if hasattr(store, "path") else "PostgreSQL guards ok"
        print(f"ok: {count} events, {what}, hash chain verified to head {head.hex()[:16]}… ({elapsed:.2f}s)")
    return 0
