"""Claims of workers on a run's turns, as a pure fold (issue 16).

The events are in :mod:`uok.domain.events.claims`. Each turn has its own
stream ``claim:<turn id>``; an event's version there is its *epoch*:

* a turn with no claim event is claimable; a claim takes epoch 1;
* a live claim's holder renews it (``ClaimRenewed``, the next epoch) and
  finally reports (``WorkerReported``, the next epoch);
* the coordinator voids a claim whose lease ran out (``ClaimExpired``, the
  next epoch): whoever appends at an epoch first wins, the other finds the
  stream moved (UNIQUE(stream, version), and every claim append checks the
  stream is still at the epoch its writer folded).

A lease runs ``ttl_seconds`` from when the *coordinator* saw the claim's
last epoch, by the coordinator's clock (hosts' clocks need not agree):
:func:`lease_expired` takes that reading and "now" as arguments. Nothing
here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import msgspec
from uok.domain.errors import RuntimeFailure
from uok.domain.events import (
    ClaimExpired,
    ClaimRenewed,
    Event,
    UnitClaimed,
    WorkerJoined,
    WorkerLeft,
    WorkerReported,
)  # fmt: skip

CLAIM_EVENTS: tuple[type[Event], ...] = (
    UnitClaimed,
    ClaimRenewed,
    ClaimExpired,
    WorkerReported,
    WorkerJoined,
    WorkerLeft,
)
CLAIM_TOPICS = tuple(f"{cls.__name__}/v{cls.VERSION}" for cls in CLAIM_EVENTS)


class ClaimLost(RuntimeFailure):
    """A worker's append was fenced: its claim on the turn is no longer the
    stream's last epoch (the lease expired, or another worker holds it)."""


class Claim(msgspec.Struct, kw_only=True):
    turn_id: str
    run_id: str
    unit_id: str
    attempt: int
    worker: str
    host: str
    pid: int
    ttl_seconds: float
    epoch: int  # the last epoch of the turn's claim stream
    claimed_at: datetime
    renewed_at: datetime  # the worker's clock, at its last claim event (for display only)
    status: str = "live"  # live | reported | expired
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.status == "live"

    def expires_at(self) -> datetime:
        """When the lease ends by the worker's last reading (for display: the
        coordinator decides by its own clock, :func:`lease_expired`)."""
        return self.renewed_at + timedelta(seconds=self.ttl_seconds)


class WorkerInfo(msgspec.Struct, kw_only=True):
    worker: str
    run_id: str
    host: str
    pid: int
    ttl_seconds: float
    joined_at: datetime
    last_seen: datetime
    left_at: datetime | None = None
    reason: str = ""
    claims: int = 0  # turns it claimed
    reported: int = 0  # outcomes it recorded
    lost: int = 0  # leases it lost (expired)


class ClaimState(msgspec.Struct, kw_only=True):
    claims: dict[str, Claim] = {}  # turn id -> its claim
    workers: dict[str, WorkerInfo] = {}  # worker id -> what it did


def apply(state: ClaimState, e: Event) -> None:
    """Fold one claim event (any other event is ignored)."""
    if isinstance(e, WorkerJoined):
        state.workers[e.worker] = WorkerInfo(
            worker=e.worker, run_id=e.run_id, host=e.host, pid=e.pid, ttl_seconds=e.ttl_seconds, joined_at=e.at,
            last_seen=e.at,
        )  # fmt: skip
        return
    if isinstance(e, WorkerLeft):
        w = state.workers.get(e.worker)
        if w is not None:
            w.left_at, w.last_seen, w.reason = e.at, e.at, e.reason
        return
    if isinstance(e, UnitClaimed):
        state.claims[e.turn_id] = Claim(
            turn_id=e.turn_id, run_id=e.run_id, unit_id=e.unit_id, attempt=e.attempt, worker=e.worker, host=e.host,
            pid=e.pid, ttl_seconds=e.ttl_seconds, epoch=e.epoch, claimed_at=e.at, renewed_at=e.at,
        )  # fmt: skip
        _seen(state, e.worker, e.at, claims=1)
        return
    if not isinstance(e, ClaimRenewed | ClaimExpired | WorkerReported):
        return
    c = state.claims.get(e.turn_id)
    if c is None:
        if isinstance(e, ClaimExpired):  # voided before any worker claimed it (its run stopped it)
            state.claims[e.turn_id] = Claim(
                turn_id=e.turn_id, run_id=e.run_id, unit_id=e.unit_id, attempt=0, worker=e.worker, host=e.host,
                pid=e.pid, ttl_seconds=0.0, epoch=e.epoch, claimed_at=e.at, renewed_at=e.at, status="expired",
                reason=e.reason,
            )  # fmt: skip
        return
    c.epoch = e.epoch
    if isinstance(e, ClaimRenewed):
        c.renewed_at, c.ttl_seconds = e.at, e.ttl_seconds
        _seen(state, e.worker, e.at)
    elif isinstance(e, WorkerReported):
        c.status = "reported"
        _seen(state, e.worker, e.at, reported=1)
    else:
        c.status, c.reason = "expired", e.reason
        w = state.workers.get(c.worker)
        if w is not None:
            w.lost += 1


def _seen(state: ClaimState, worker: str, at: datetime, *, claims: int = 0, reported: int = 0) -> None:
    w = state.workers.get(worker)
    if w is not None:
        w.last_seen = max(w.last_seen, at)
        w.claims += claims
        w.reported += reported


def fold(events: Iterable[Event]) -> ClaimState:
    state = ClaimState()
    for e in events:
        apply(state, e)
    return state


def claimable(state: ClaimState, turn_ids: Iterable[str]) -> Iterator[str]:
    """The turns among ``turn_ids`` no worker has claimed (in their order)."""
    return (t for t in turn_ids if t not in state.claims)


def lease_expired(claim: Claim, seen_at: float, now: float) -> bool:
    """True if a live claim's lease ran out: the coordinator saw its last
    epoch at ``seen_at`` and it is ``now`` (seconds, the coordinator's clock)."""
    return claim.live and now - seen_at > claim.ttl_seconds


def check_holds(state: ClaimState, turn_id: str, worker: str, epoch: int) -> Claim:
    """The claim ``worker`` holds on ``turn_id`` at ``epoch``, or :class:`ClaimLost`
    saying why not (the append itself is the final fence: this only names the reason)."""
    c = state.claims.get(turn_id)
    if c is None:
        raise ClaimLost(f"turn {turn_id} was never claimed; nothing recorded")
    if c.worker != worker:
        raise ClaimLost(f"turn {turn_id} is claimed by worker {c.worker} (pid {c.pid} on {c.host}); nothing recorded")
    if c.status == "expired":
        raise ClaimLost(
            f"the lease of worker {worker} on turn {turn_id} (unit {c.unit_id}) expired at epoch {c.epoch}: "
            f"{c.reason or 'no heartbeat within its TTL'}; its result is refused, nothing recorded"
        )
    if c.epoch != epoch:
        raise ClaimLost(f"turn {turn_id} is at claim epoch {c.epoch}, not {epoch}; nothing recorded")
    return c
