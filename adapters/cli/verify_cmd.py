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
import sys
import time

import orjson
from uok.adapters.cli.common import add_db_argument, open_store

from uok.errors import IntegrityFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="deep integrity check: SQLite integrity_check and the hash chain",
        description=(
            "Check an event log end to end: SQLite's integrity_check (every page, every index "
            "against its table) and the SHA-256 hash chain from genesis to the head. "
            "Exit 0 if both pass, 3 (one line naming the problem) if either fails."
        ),
    )
    add_db_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable result")
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
        from uok.adapters.cli.export_cmd import verify_export_cli

        return verify_export_cli(args)
    store = open_store(args)
    try:
        started = time.perf_counter()
        problems = [r[0] for r in store.query("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise IntegrityFailure(f"{store.path}: SQLite integrity_check failed: {'; '.join(problems[:3])}")
        try:
            count, head = store.verify_chain()
        except ChainBroken as exc:
            raise IntegrityFailure(f"{store.path}: {exc}") from None
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    result = {"ok": True, "events": count, "head": head.hex(), "seconds": round(elapsed, 3)}
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    else:
        print(
            f"ok: {count} events, SQLite integrity ok, hash chain verified to head {head.hex()[:16]}… ({elapsed:.2f}s)"
        )
    return 0
