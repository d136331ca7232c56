"""Circuit breaker per gate: a pure policy plus the fold of its events.

A gate that keeps failing (a broken test runner, a scanner that times out)
should stop being asked for a while, so that every turn does not pay for it;
but it must be asked again later, carefully. States (behaviour §2, gauge value in
brackets):

* ``closed`` [0]: the gate runs. ``failure_threshold`` consecutive failed
  *final* results (``fail`` or ``manual-attention``, after retries) open it.
* ``open`` [2]: calls short-circuit (recorded, the gate does not execute,
  fail-closed). It stays open ``open_seconds × 2^streak`` where ``streak``
  counts consecutive re-openings, capped at ``max_streak``.
* ``half-open`` [1]: once the open time has passed (judged at the time of
  the observation being handled), up to ``half_open_max_probes`` calls are
  admitted as probes. A pass closes the breaker and resets the streak; a
  failure re-opens it with ``streak + 1``. A probe that has not reported by
  ``probe_deadline`` (``half_open_timeout_seconds`` after entering
  half-open) re-opens it too, so a hung probe cannot hold it half-open.

Nothing here reads a clock: times arrive as arguments. State is not stored
anywhere but the log: :func:`apply` folds ``BreakerTransitioned``,
``GateRequested`` and ``GateRun`` events into a :class:`BreakerBook`, and
the kernel (deciding) and ``projections/breakers.py`` (reporting) run the
very same fold, so "the breaker at position P" means one thing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from uok.domain.events import BreakerState, BreakerTransitioned, GateRequested, GateRun

GAUGE = {"closed": 0, "half-open": 1, "open": 2}
FAILED_OUTCOMES = frozenset({"fail", "manual-attention"})


class BreakerPolicy(msgspec.Struct, frozen=True, kw_only=True):
    failure_threshold: int = 3
    open_seconds: float = 30.0
    max_streak: int = 5
    half_open_max_probes: int = 1
    half_open_timeout_seconds: float = 60.0

    def open_for(self, streak: int) -> timedelta:
        return timedelta(seconds=self.open_seconds * (2 ** min(streak, self.max_streak)))


class BreakerRecord(msgspec.Struct, kw_only=True):
    """One gate's breaker, as folded from the log (mutable while folding)."""

    gate_id: str
    key: str = ""  # the book's key: the gate id (shared by every plan) or "<plan>/<gate>" (one plan's)
    state: BreakerState = "closed"
    streak: int = 0
    consecutive_failures: int = 0
    open_until: datetime | None = None
    probe_deadline: datetime | None = None
    probe_turns: list[str] = []  # turns whose probe has not reported yet
    changed_at: datetime | None = None
    reason: str = ""
    transitions: int = 0
    short_circuits: int = 0
    last_position: int = 0

    @property
    def scope(self) -> str:
        """The plan this breaker protects ("" = shared by every plan)."""
        k = self.key or self.gate_id
        return k[: -len(self.gate_id) - 1] if k != self.gate_id and k.endswith("/" + self.gate_id) else ""

    @property
    def breaker(self) -> str:
        """What events carry as ``breaker``: the key when scoped, "" when it is the gate id."""
        return "" if (self.key or self.gate_id) == self.gate_id else self.key

    @property
    def probes_in_flight(self) -> int:
        return len(self.probe_turns)

    def next_probe_at(self) -> datetime | None:
        """When the breaker will next let a call through (``None``: it does now)."""
        return self.open_until if self.state == "open" else None

    def effective_state(self, at: datetime | None) -> str:
        """The state a call at ``at`` would meet (an expired open is half-open)."""
        if self.state == "open" and at is not None and self.open_until is not None and at >= self.open_until:
            return "half-open"
        return self.state


class BreakerBook(msgspec.Struct, kw_only=True):
    """Every gate's breaker; the state type of the breakers projection."""

    gates: dict[str, BreakerRecord] = {}

    def get(self, key: str, gate_id: str = "") -> BreakerRecord:
        """The breaker under ``key`` (a gate id, or "<plan>/<gate>" for one plan's)."""
        rec = self.gates.get(key)
        if rec is None:
            rec = self.gates[key] = BreakerRecord(gate_id=gate_id or key, key=key)
        return rec


def key_of(event: GateRequested | GateRun | BreakerTransitioned) -> str:
    """The breaker an event is about: its ``breaker`` key, else (older logs, shared scope) its gate id."""
    return event.breaker or event.gate_id


FOLDED_TYPES = frozenset({"BreakerTransitioned", "GateRequested", "GateRun"})


def apply(book: BreakerBook, event: object, position: int = 0) -> BreakerBook:
    """Fold one event into the book (events of other types are ignored)."""
    if isinstance(event, BreakerTransitioned):
        rec = book.get(key_of(event), event.gate_id)
        rec.state = event.to_state
        rec.streak = event.streak
        rec.consecutive_failures = event.consecutive_failures
        rec.open_until = event.open_until if event.to_state == "open" else None
        rec.probe_deadline = event.probe_deadline if event.to_state == "half-open" else None
        rec.probe_turns = []
        rec.changed_at = event.at
        rec.reason = event.reason
        rec.transitions += 1
        rec.last_position = position
    elif isinstance(event, GateRequested):
        if event.breaker_state:  # a gate the breakers watch: list it even while closed
            rec = book.get(key_of(event), event.gate_id)
            if event.probe and event.turn_id not in rec.probe_turns:
                rec.probe_turns.append(event.turn_id)
            rec.last_position = position
    elif isinstance(event, GateRun):
        if not event.breaker_state:
            return book  # no breaker consulted: unknown/disabled gate, cost guard
        rec = book.get(key_of(event), event.gate_id)
        rec.last_position = position
        if event.short_circuited:
            rec.short_circuits += 1
            return book
        if event.outcome == "retry":
            return book
        if event.turn_id in rec.probe_turns:
            rec.probe_turns.remove(event.turn_id)
        if event.outcome == "pass":
            rec.consecutive_failures = 0
        elif event.outcome in FAILED_OUTCOMES:
            rec.consecutive_failures += 1
    return book


# --------------------------------------------------------------------------- policy


def _transition(
    rec: BreakerRecord,
    to_state: BreakerState,
    at: datetime,
    *,
    streak: int,
    failures: int,
    reason: str,
    policy: BreakerPolicy,
    run_id: str,
) -> BreakerTransitioned:
    return BreakerTransitioned(
        run_id=run_id,
        at=at,
        gate_id=rec.gate_id,
        from_state=rec.state,
        to_state=to_state,
        streak=streak,
        consecutive_failures=failures,
        open_until=at + policy.open_for(streak) if to_state == "open" else None,
        probe_deadline=at + timedelta(seconds=policy.half_open_timeout_seconds) if to_state == "half-open" else None,
        reason=reason,
        breaker=rec.breaker,
    )


def tick(rec: BreakerRecord, policy: BreakerPolicy, now: datetime, *, run_id: str = "") -> BreakerTransitioned | None:
    """The transition that the passing of time alone causes at ``now``, if any."""
    if rec.state == "open" and rec.open_until is not None and now >= rec.open_until:
        return _transition(
            rec,
            "half-open",
            now,
            streak=rec.streak,
            failures=rec.consecutive_failures,
            reason=f"open time elapsed at {rec.open_until.isoformat()}",
            policy=policy,
            run_id=run_id,
        )
    if rec.state == "half-open" and rec.probe_turns and rec.probe_deadline is not None and now >= rec.probe_deadline:
        streak = min(rec.streak + 1, policy.max_streak)
        return _transition(
            rec,
            "open",
            now,
            streak=streak,
            failures=rec.consecutive_failures,
            reason=(f"probe {rec.probe_turns[0]} did not report within {policy.half_open_timeout_seconds:g} s"),
            policy=policy,
            run_id=run_id,
        )
    return None


def admit(rec: BreakerRecord, policy: BreakerPolicy) -> tuple[bool, bool]:
    """(admitted, as_probe) for a call now (after :func:`tick`)."""
    if rec.state == "closed":
        return True, False
    if rec.state == "half-open" and rec.probes_in_flight < policy.half_open_max_probes:
        return True, True
    return False, False


def short_circuit_reason(rec: BreakerRecord) -> str:
    if rec.state == "open" and rec.open_until is not None:
        return f"circuit open until {rec.open_until.isoformat()} (streak {rec.streak}, {rec.consecutive_failures} consecutive failures)"
    return f"circuit half-open: {rec.probes_in_flight} probe(s) already in flight"


def on_result(
    rec: BreakerRecord, policy: BreakerPolicy, outcome: str, now: datetime, *, run_id: str = "", was_probe: bool = False
) -> BreakerTransitioned | None:
    """The transition a final result causes. Call it AFTER folding the
    result's ``GateRun`` (so ``consecutive_failures`` already counts it).

    Only a probe's result moves a half-open breaker: a result from a call
    admitted while the breaker was still closed says nothing about recovery.
    """
    failed = outcome in FAILED_OUTCOMES
    if rec.state == "closed":
        if failed and rec.consecutive_failures >= policy.failure_threshold:
            return _transition(
                rec,
                "open",
                now,
                streak=rec.streak,
                failures=rec.consecutive_failures,
                reason=f"{rec.consecutive_failures} consecutive failures (threshold {policy.failure_threshold})",
                policy=policy,
                run_id=run_id,
            )
    elif rec.state == "half-open" and was_probe:
        if outcome == "pass":
            return _transition(
                rec, "closed", now, streak=0, failures=0, reason="probe passed", policy=policy, run_id=run_id
            )
        if failed:
            streak = min(rec.streak + 1, policy.max_streak)
            return _transition(
                rec,
                "open",
                now,
                streak=streak,
                failures=rec.consecutive_failures,
                reason="probe failed",
                policy=policy,
                run_id=run_id,
            )
    return None
