"""``uok breakers``: every gate's circuit breaker, now or as of a position."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError

DESCRIPTION = """\
Show every circuit breaker: its gate and scope (one plan's, the default, or
shared by every plan: [uok.breakers] scope), state (closed / half-open / open, gauge
0/1/2), streak of re-openings, consecutive failed results, when it next lets
a probe through, and why it last changed.

The state is a fold of the event log (the same fold the kernel decides
with). With --at POSITION it is the state as of that position, folded from
the log up to it; nothing is executed. "effective" is the state a gate call
would meet at the time of the event at POSITION (--at) or now (live): an
open breaker whose time has passed is effectively half-open.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "breakers",
        description=DESCRIPTION,
        examples="""
            uok breakers
            uok breakers --at 1200          # as of log position 1200
            uok breakers --json | jq '.breakers[] | select(.state != "closed")'
        """,
    )
    p.add_argument("--at", type=int, metavar="POSITION", help="state as of this log position (default: the head)")
    p.add_argument("--json", action="store_true", help="one JSON object: position, as_of, breakers")
    p.set_defaults(func=breakers)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def snapshot(log, at: int | None = None, now: datetime | None = None) -> dict:
    """The breakers as of position ``at`` (None: the head), as a JSON-able dict."""
    from uok.domain.log import codec
    from uok.domain.policies import breaker as brk
    from uok.projections.breakers import BreakersProjection

    if at is not None and at < 0:  # 0: before the first event, as for uok state and uok metrics
        raise InputError(f"--at must be a position >= 0, got {at}")
    proj = BreakersProjection()
    book = proj.initial()
    last, as_of = 0, now
    for r in log.records(0, upto=at):
        last = r.position
        if proj.wants(r.topic) or r.position == at:
            e = codec.decode(r.topic, r.payload)
            if proj.wants(r.topic):
                book = proj.apply(book, r.position, e)
            if r.position == at:
                as_of = e.at  # "as of" a position: the time of the event there
    if at is not None and last < at:
        raise InputError(f"position {at} is past the end of the log (head is {last})")
    rows = []
    for gid in sorted(book.gates):
        rec = book.gates[gid]
        eff = rec.effective_state(as_of)
        rows.append(
            {
                "gate_id": rec.gate_id,
                "breaker": rec.key or rec.gate_id,
                "scope": rec.scope or "shared",  # the plan it protects, or "shared" by every plan
                "state": rec.state,
                "gauge": brk.GAUGE[rec.state],
                "effective_state": eff,
                "streak": rec.streak,
                "consecutive_failures": rec.consecutive_failures,
                "open_until": _iso(rec.open_until),
                "next_probe_at": _iso(rec.next_probe_at())
                if eff == "open"
                else (_iso(as_of) if eff == "half-open" else None),
                "probe_deadline": _iso(rec.probe_deadline),
                "probes_in_flight": rec.probes_in_flight,
                "short_circuits": rec.short_circuits,
                "transitions": rec.transitions,
                "changed_at": _iso(rec.changed_at),
                "reason": rec.reason,
                "last_position": rec.last_position,
            }
        )
    return {"position": last, "as_of": _iso(as_of), "breakers": rows}


def breakers(args: argparse.Namespace) -> int:
    log = open_log(args, readonly=True)
    try:
        snap = snapshot(log, args.at, datetime.now(UTC))
    finally:
        log.store.close()
    if args.json:
        emit(snap)
        return 0
    where = f"as of position {snap['position']}" + (f" ({snap['as_of']})" if snap["as_of"] else "")
    if not snap["breakers"]:
        print(f"no gate has run yet ({where})")
        return 0
    print(f"circuit breakers {where}")
    for b in snap["breakers"]:
        state = (
            b["state"] if b["effective_state"] == b["state"] else f"{b['state']} (effectively {b['effective_state']})"
        )
        probe = f" next probe {b['next_probe_at']}" if b["next_probe_at"] and b["effective_state"] == "open" else ""
        print(
            f"  {b['gate_id']:<14} {('plan ' + b['scope']) if b['scope'] != 'shared' else 'shared':<16} {state:<32} streak={b['streak']} failures={b['consecutive_failures']}"
            f" short-circuits={b['short_circuits']}{probe}" + (f"  ({b['reason']})" if b["reason"] else "")
        )
    return 0
