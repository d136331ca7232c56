"""Claims in the shell: read them from the log, append them fenced (issue 16).

The rules are the pure fold in :mod:`uok.domain.policies.claims`; this
adapter

* reads the claim events appended since it last looked (:class:`ClaimBook`)
  and notes, by this process's monotonic clock, when it first saw each
  turn's latest epoch: a lease runs from there;
* appends a claim event at its epoch, checking in the same transaction that
  the turn's claim stream is still at the epoch before (:func:`append_fenced`):
  a worker whose lease expired, or that lost a race, gets :class:`ClaimLost`
  saying why, and nothing is written;
* is the coordinator's desk (:class:`ClaimDesk`): which dispatched turns
  have a report to admit, which leases ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from uok.adapters.eventlog import EventLog
from uok.domain import events as ev
from uok.domain.events.claims import admitted
from uok.domain.log import codec
from uok.domain.log.errors import IntegrityError
from uok.domain.log.store import StreamMoved
from uok.domain.policies.claims import (
    CLAIM_TOPICS,
    Claim,
    ClaimLost,
    ClaimState,
    apply,
    check_holds,
    lease_expired,
)  # fmt: skip

__all__ = ["ClaimBook", "ClaimDesk", "ClaimLost", "admitted_report", "append_fenced", "read_claims"]

ClaimEvent = ev.UnitClaimed | ev.ClaimRenewed | ev.ClaimExpired | ev.WorkerReported


class ClaimBook:
    """The claim events of a log, folded as they are appended (by anyone)."""

    def __init__(self, log: EventLog, *, after: int = 0, monotonic: Callable[[], float] = time.monotonic):
        self.log, self.monotonic = log, monotonic
        self.state = ClaimState()
        self.seen: dict[str, float] = {}  # turn id -> when this process first saw its latest epoch
        self.position = after

    def refresh(self) -> list[ev.Event]:
        """Fold what was appended since the last call; returns it."""
        head = self.log.store.head()[0]
        if head <= self.position:
            return []
        new = []
        now = self.monotonic()
        for r in self.log.store.read(self.position, upto=head, topics=CLAIM_TOPICS):
            e = codec.decode(r.topic, r.payload)
            apply(self.state, e)
            turn = getattr(e, "turn_id", None)
            if turn is not None:
                self.seen[turn] = now
            new.append(e)
        self.position = head
        return new


def read_claims(log: EventLog, since_runs: Sequence[tuple[str, str]] | None = None) -> ClaimState:
    """The claims and workers of the log (``uok status``, ``uok doctor``).

    ``since_runs``: the log's runs as (run id, status), oldest first; then
    only the events from the entry of the oldest open run (or, none open,
    of the newest run) are read, not the whole history: claims live and die
    within their run, and a status on a long log must not scan it all."""
    after = 0
    if since_runs is not None:
        open_runs = [rid for rid, status in since_runs if status == "open"]
        first = open_runs[0] if open_runs else (since_runs[-1][0] if since_runs else None)
        if first is None:
            return ClaimState()
        for r in log.store.read(0, stream=f"run:{first}", limit=1):  # the (stream, version) index
            after = r.position - 1
    book = ClaimBook(log, after=after)
    book.refresh()
    return book.state


def append_fenced(log: EventLog, e: ClaimEvent, *, own_epoch: bool = False) -> int:
    """Append a claim event at its epoch, only if the turn's claim stream is
    still at the epoch before it; :class:`ClaimLost` (naming why) otherwise.

    A worker's heartbeat or report is first checked against the stream as
    it is (the epoch before must be this worker's live claim: an expired
    claim is refused even at an epoch past the expiry), then appended with
    the stream expected at that epoch, so an expiry landing in between makes
    the append fail whole. ``own_epoch``: the epoch before is one this
    worker appended itself (its claim or its last heartbeat): the stream
    still at it means nobody voided it, so the expectation alone fences and
    the stream is not read first (one round trip less per heartbeat and report)."""
    if isinstance(e, ev.ClaimRenewed | ev.WorkerReported) and not own_epoch:
        check_holds(_stream_state(log, e.turn_id), e.turn_id, e.worker, e.epoch - 1)
    try:
        return log.append([e], expect={e.stream(): e.epoch - 1})[0]
    except (IntegrityError, StreamMoved):
        pass
    state = _stream_state(log, e.turn_id)
    if isinstance(e, ev.UnitClaimed):
        c = state.claims.get(e.turn_id)
        holder = f"worker {c.worker} (pid {c.pid} on {c.host})" if c is not None else "the coordinator (stopped)"
        raise ClaimLost(f"turn {e.turn_id} was claimed first by {holder}; nothing recorded")
    if isinstance(e, ev.ClaimExpired):
        raise ClaimLost(f"the claim on turn {e.turn_id} moved past epoch {e.epoch - 1} (renewed or reported)")
    check_holds(state, e.turn_id, e.worker, e.epoch - 1)  # raises, naming the reason
    raise ClaimLost(f"turn {e.turn_id}: claim epoch {e.epoch} is taken; nothing recorded")


def _stream_state(log: EventLog, turn_id: str) -> ClaimState:
    state = ClaimState()
    for r in log.store.read(0, stream=ev.claim_stream(turn_id)):
        apply(state, codec.decode(r.topic, r.payload))
    return state


def admitted_report(report: ev.WorkerReported, at: datetime) -> ev.ExecutionFinished:
    """The observation the coordinator steps for a worker's report."""
    return admitted(report, at)


class ClaimDesk:
    """The coordinator's view of its run's claims (``uok run --claims``)."""

    def __init__(self, log: EventLog, run_id: str, *, after: int, monotonic: Callable[[], float] = time.monotonic):
        self.run_id = run_id
        self.book = ClaimBook(log, after=after, monotonic=monotonic)
        self.log = log
        self.interval = 0.05  # how often the log is read for claims (seconds)
        self._next = 0.0

    def due(self) -> bool:
        now = self.book.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def poll(self, waiting: Callable[[str], bool]) -> tuple[list[ev.WorkerReported], list[Claim]]:
        """Reports of turns still ``waiting`` for one, and live claims of this
        run whose lease ran out (by this process's clock)."""
        new = self.book.refresh()
        reports = [
            e for e in new if isinstance(e, ev.WorkerReported) and e.run_id == self.run_id and waiting(e.turn_id)
        ]
        now = self.book.monotonic()
        lost = [
            c
            for c in self.book.state.claims.values()
            if c.run_id == self.run_id and lease_expired(c, self.book.seen.get(c.turn_id, now), now)
        ]
        return reports, lost

    def expiry(self, c: Claim, at: datetime) -> tuple[ev.ClaimExpired, ev.ExecutionFinished]:
        """The events of a lost lease: the claim voided at the next epoch, and
        the turn's failed execution (its unit is retried within its budget)."""
        why = f"worker {c.worker} (pid {c.pid} on {c.host}) sent no heartbeat for {c.ttl_seconds:g}s: lease expired"
        expired = ev.ClaimExpired(
            run_id=self.run_id, at=at, turn_id=c.turn_id, epoch=c.epoch + 1, unit_id=c.unit_id, worker=c.worker,
            host=c.host, pid=c.pid, reason=why,
        )  # fmt: skip
        lost = ev.ExecutionFinished(
            run_id=self.run_id, at=at, turn_id=c.turn_id, unit_id=c.unit_id, exit_code=None, duration_ms=0, error=why
        )
        return expired, lost

    def revoke(self, turn_id: str, unit_id: str, at: datetime) -> bool:
        """Void a turn no worker has claimed (it was cancelled): True if no
        worker can claim it any more; False if one claimed it first (it will
        see the turn stopped and report)."""
        try:
            append_fenced(
                self.log,
                ev.ClaimExpired(
                    run_id=self.run_id, at=at, turn_id=turn_id, epoch=1, unit_id=unit_id, worker="", host="", pid=0,
                    reason="stopped before any worker claimed it",
                ),
            )  # fmt: skip
        except ClaimLost:
            return False
        return True


def worker_rows(
    log: EventLog, now: datetime, since_runs: Sequence[tuple[str, str]] | None = None
) -> list[dict[str, object]]:
    """The workers of the open runs (none open: of the last run) with their
    leases (``uok status``): who, where, what it did, and each claim it
    holds, with when its lease ends by the worker's last heartbeat
    (``expired``: past it by this host's clock)."""
    state = read_claims(log, since_runs)
    held: dict[str, list[Claim]] = {}
    for c in state.claims.values():
        if c.live:
            held.setdefault(c.worker, []).append(c)
    rows = []
    for w in state.workers.values():
        rows.append(
            {
                "worker": w.worker,
                "run_id": w.run_id,
                "host": w.host,
                "pid": w.pid,
                "lease_seconds": w.ttl_seconds,
                "joined_at": w.joined_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "left_at": w.left_at.isoformat() if w.left_at else None,
                "left_because": w.reason,
                "claimed": w.claims,
                "reported": w.reported,
                "lost": w.lost,
                "leases": [
                    {
                        "unit_id": c.unit_id,
                        "turn_id": c.turn_id,
                        "epoch": c.epoch,
                        "expires_at": c.expires_at().isoformat(),
                        "expired": c.expires_at() < now,
                    }
                    for c in held.get(w.worker, [])
                ],
            }
        )
    return rows
