"""Writer tokens (behaviour §15) as a fold of the ``writer`` stream.

One token per turn. Every acquisition and release is an event in the single
stream ``writer``; an event's version in that stream *is* the global write
sequence, so SQLite's UNIQUE(stream, version) makes the sequence monotonic
across processes (two shells claiming version N cannot both succeed).

* epoch: the sequence at acquisition. It fences writes: a write presenting
  an epoch is accepted only while the token of that epoch is held and has
  not expired (:func:`check_write`).
* TTL: a token whose holder died (``kill -9``) is never released by it. Any
  later acquisition first *reclaims* every token past its TTL by recording a
  ``WriterTokenReleased(reason="expired")``, so the fold, and therefore
  every process reading the log, agrees it is gone. An expired token never
  blocks an acquisition, even before it is reclaimed.
* Acquiring for a turn whose token is still live is refused
  (:class:`TokenAlreadyActive`).

Everything here is pure: "now" is an argument, supplied by the shell.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from uok.domain.errors import RuntimeFailure
from uok.domain.events import WriterTokenAcquired, WriterTokenReleased

DEFAULT_TTL_SECONDS = 300.0
WRITER_STREAM = "writer"


class WriterTokenError(RuntimeFailure):
    """Base of the writer-token refusals."""


class TokenAlreadyActive(WriterTokenError):
    """A live token exists for this turn already."""


class StaleEpochError(WriterTokenError):
    """A write presented an epoch whose token is released, reclaimed or expired."""


class HeldToken(msgspec.Struct, kw_only=True):
    token_id: str
    turn_id: str
    epoch: int
    owner: str
    pid: int
    run_id: str
    acquired_at: datetime
    ttl_seconds: float

    @property
    def expires_at(self) -> datetime:
        return self.acquired_at + timedelta(seconds=self.ttl_seconds)

    def live(self, now: datetime) -> bool:
        return now < self.expires_at


class WriterState(msgspec.Struct, kw_only=True):
    """``sequence``: the last version of the ``writer`` stream.
    ``held``: tokens acquired and not yet released, by epoch (released
    tokens are dropped, so the state stays as small as the live set)."""

    sequence: int = 0
    held: dict[int, HeldToken] = {}


def apply(state: WriterState, e: WriterTokenAcquired | WriterTokenReleased) -> WriterState:
    state.sequence = max(state.sequence, e.sequence)
    if isinstance(e, WriterTokenAcquired):
        state.held[e.epoch] = HeldToken(
            token_id=e.token_id,
            turn_id=e.turn_id,
            epoch=e.epoch,
            owner=e.owner,
            pid=e.pid,
            run_id=e.run_id,
            acquired_at=e.at,
            ttl_seconds=e.ttl_seconds,
        )
    elif isinstance(e, WriterTokenReleased):
        state.held.pop(e.epoch, None)
    return state


def expired(state: WriterState, now: datetime) -> list[HeldToken]:
    """Held tokens past their TTL, oldest first: the ones to reclaim."""
    return sorted((t for t in state.held.values() if not t.live(now)), key=lambda t: t.epoch)


def live_token_for(state: WriterState, turn_id: str, now: datetime) -> HeldToken | None:
    for t in state.held.values():
        if t.turn_id == turn_id and t.live(now):
            return t
    return None


def check_acquire(state: WriterState, turn_id: str, now: datetime) -> None:
    t = live_token_for(state, turn_id, now)
    if t is not None:
        raise TokenAlreadyActive(
            f"Writer token already active for turn {turn_id} (epoch {t.epoch}, pid {t.pid}, "
            f"expires {t.expires_at.isoformat()})"
        )


def check_write(state: WriterState, epoch: int, now: datetime) -> HeldToken:
    """The token a write under ``epoch`` belongs to; :class:`StaleEpochError` if none is live."""
    t = state.held.get(epoch)
    if t is None:
        newest = max(state.held, default=0)
        raise StaleEpochError(
            f"stale writer epoch {epoch}: its token was released or reclaimed "
            f"(writer sequence is {state.sequence}, newest held epoch {newest or 'none'})"
        )
    if not t.live(now):
        raise StaleEpochError(
            f"stale writer epoch {epoch}: the token of turn {t.turn_id} expired at {t.expires_at.isoformat()}"
        )
    return t
