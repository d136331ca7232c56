"""``uok writer``: the writer-token state folded from the log (behaviour §15)."""

from __future__ import annotations

import argparse
import socket
from datetime import UTC, datetime

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "writer",
        description="""
            Show the global write sequence (the version of the `writer` stream) and every writer
            token still held: its turn, fencing epoch, holder pid (and whether that pid is alive
            on this host) and when it expires. An expired token no longer blocks anything; the
            next acquisition reclaims it. With --reclaim, reclaim expired tokens now (records a
            WriterTokenReleased each).
        """,
        examples="""
            uok writer
            uok writer --reclaim
            uok writer --json | jq '.held[] | select(.expired)'
        """,
    )
    p.add_argument("--reclaim", action="store_true", help="release every token past its TTL")
    p.add_argument("--json", action="store_true", help="one JSON object: sequence, held, reclaimed")
    p.set_defaults(func=writer)


def writer(args: argparse.Namespace) -> int:
    from uok.adapters.probes import pid_alive
    from uok.adapters.writer import WriterTokens

    log = open_log(args, readonly=not args.reclaim)  # --reclaim writes; otherwise it only reads
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
        emit({"sequence": state.sequence, "held": tokens, "reclaimed": reclaimed})
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
