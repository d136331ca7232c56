"""``uok writer``: the writer-token state folded from the log (behaviour §15)."""

from __future__ import annotations

import argparse
import socket
import sys
from datetime import UTC, datetime

import orjson
from uok.adapters.cli.common import add_db_argument, open_log


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "writer",
        help="writer tokens: sequence, held tokens, expiry",
        description="Show the global write sequence (the version of the `writer` stream) and every writer "
        "token still held: its turn, fencing epoch, holder pid (and whether that pid is alive on this host) "
        "and when it expires. An expired token no longer blocks anything; the next acquisition reclaims it. "
        "With --reclaim, reclaim expired tokens now (records a WriterTokenReleased each).",
    )
    add_db_argument(p)
    p.add_argument("--reclaim", action="store_true", help="release every token past its TTL")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=writer)


def writer(args: argparse.Namespace) -> int:
    from uok.adapters.runner import pid_alive
    from uok.adapters.writer import WriterTokens

    log = open_log(args)
    try:
        log.store.verify_chain()  # a damaged log raises ChainBroken: exit 3
        w = WriterTokens(log)
        now = datetime.now(UTC)
        reclaimed = w.reclaim_expired(now) if args.reclaim else 0
        state = w.refresh()
    finally:
        log.store.close()
    tokens = [
        {
            "turn_id": t.turn_id,
            "epoch": t.epoch,
            "token_id": t.token_id,
            "run_id": t.run_id,
            "owner": t.owner,
            "pid": t.pid,
            "pid_alive": pid_alive(t.pid),
            "acquired_at": t.acquired_at.isoformat(),
            "expires_at": t.expires_at.isoformat(),
            "expired": not t.live(now),
        }
        for t in sorted(state.held.values(), key=lambda t: t.epoch)
    ]
    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps({"sequence": state.sequence, "held": tokens, "reclaimed": reclaimed}) + b"\n"
        )
        return 0
    print(
        f"writer sequence {state.sequence}; {len(tokens)} token(s) held"
        + (f"; reclaimed {reclaimed}" if args.reclaim else "")
    )
    host = socket.gethostname()
    for t in tokens:
        alive = "alive" if t["pid_alive"] else f"not running on {host}"
        print(
            f"  epoch {t['epoch']:>6}  {t['turn_id']}  pid {t['pid']} ({alive})  "
            f"{'EXPIRED' if t['expired'] else 'expires'} {t['expires_at']}"
        )
    return 0
