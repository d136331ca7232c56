"""Writer tokens in the shell: acquire, release, reclaim, fence (behaviour §15).

The rules are the pure fold in :mod:`uok.domain.policies.writer`; this adapter reads the
``writer`` stream forward from where it last stopped, measures "now" and the
pid, and records the outcome as observations:

* :meth:`WriterTokens.acquire` first reclaims tokens past their TTL (a
  ``WriterTokenReleased(reason="expired")`` each: the holder died or hung),
  refuses a turn that already holds a live token, then appends
  ``WriterTokenAcquired`` at version ``sequence + 1`` of the ``writer``
  stream. If another process took that version first, the append fails on
  UNIQUE(stream, version); the adapter re-reads and retries, so sequences
  are gapless and monotonic across every process sharing the log.
* :meth:`release` gives a token back (a no-op if it was reclaimed already).
* :meth:`check` / :meth:`guard_write` raise :class:`StaleEpochError` for a
  token or epoch that is no longer live: released, reclaimed, or expired.

``record`` is how an observation is written. Standalone it appends to the
log; the runner passes its ``_step`` so each observation also goes through
``Kernel.handle`` (which records nothing for them) and the run stays
replayable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from uok.adapters.eventlog import EventLog
from uok.domain.events import Event, WriterTokenAcquired, WriterTokenReleased
from uok.domain.log import codec
from uok.domain.log.errors import IntegrityError
from uok.domain.policies.writer import (
    DEFAULT_TTL_SECONDS,
    WRITER_STREAM,
    StaleEpochError,
    TokenAlreadyActive,
    WriterState,
    WriterTokenError,
    apply,
    check_acquire,
    check_write,
    expired,
)  # fmt: skip

__all__ = ["StaleEpochError", "Token", "TokenAlreadyActive", "WriterTokenError", "WriterTokens"]

Clock = Callable[[], datetime]
_TOPICS = (codec.topic_of(WriterTokenAcquired), codec.topic_of(WriterTokenReleased))
MAX_RETRIES = 100  # conflicts on the writer stream before giving up (each means another process progressed)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _token_id() -> str:
    """A random token id: ``uuid.uuid4().hex``, made without the UUID object."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # RFC 4122 variant
    return b.hex()


class Token(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    turn_id: str
    epoch: int
    sequence: int
    owner: str
    pid: int
    ttl_seconds: float
    acquired_at: datetime


class WriterTokens:
    def __init__(
        self,
        log: EventLog,
        *,
        clock: Clock = utc_now,
        record: Callable[[Event], None] | None = None,
        run_id: str = "",
        default_ttl: float = DEFAULT_TTL_SECONDS,
    ):
        self.log = log
        self.clock = clock
        self.run_id = run_id
        self.default_ttl = default_ttl
        self._record = record or (lambda e: self.log.append([e]))
        self.state = WriterState()
        self._position = 0

    def refresh(self) -> WriterState:
        """Fold the ``writer`` events appended since the last call (by any process).

        First one index probe: the ``writer`` stream's versions are its
        sequences (pinned, unique), and this fold holds every event of the
        stream up to its version when last read plus its own records,
        folded as they are made (:meth:`_recorded`), so while the stream's
        version is not past ``state.sequence`` there is nothing to read; the
        runner's own acquire and release (issue 15) then cost no read of the
        log. (Below it: own records the runner holds back until its next
        append, inside a transaction that keeps every other writer out.
        If such an append fails, the runner has the fold start over:
        :meth:`forget`.) Otherwise it reads the position range
        after the last read, filtered by topic, not ``stream = 'writer'``:
        SQLite would answer the latter through the (stream, version) index,
        scanning the whole stream on every call. That range may hold this
        fold's own records again: folding them twice, in log order, changes
        nothing (each epoch ends as the last event about it left it)."""
        store = self.log.store
        if store.stream_version(WRITER_STREAM) <= self.state.sequence:
            return self.state
        head = store.head()[0]
        if head > self._position:
            for r in store.read(self._position, upto=head, topics=_TOPICS):
                if r.stream == WRITER_STREAM:
                    apply(self.state, codec.decode(r.topic, r.payload))  # type: ignore[arg-type]
            self._position = head
        return self.state

    def forget(self) -> None:
        """Fold the ``writer`` stream again from its start on the next read
        (an append this fold counted on failed: what it holds may not be in
        the log)."""
        self.state = WriterState()
        self._position = 0

    def _recorded(self, e: WriterTokenAcquired | WriterTokenReleased) -> None:
        """Record ``e`` (raises IntegrityError if its sequence was taken) and fold it."""
        self._record(e)
        apply(self.state, e)

    # ------------------------------------------------------------------ lifecycle

    def acquire(
        self,
        turn_id: str,
        owner: str = "uok",
        pid: int | None = None,
        ttl: float | None = None,
        now: datetime | None = None,
    ) -> Token:
        """Take the token for ``turn_id``; :class:`TokenAlreadyActive` if it holds a live one."""
        pid = os.getpid() if pid is None else pid
        ttl = self.default_ttl if ttl is None else float(ttl)
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        for _ in range(MAX_RETRIES):
            at = now or self.clock()
            state = self.refresh()
            try:
                self._reclaim(state, at)
                check_acquire(state, turn_id, at)
                seq = state.sequence + 1
                e = WriterTokenAcquired(
                    run_id=self.run_id,
                    at=at,
                    token_id=_token_id(),
                    turn_id=turn_id,
                    epoch=seq,
                    sequence=seq,
                    owner=owner,
                    pid=pid,
                    ttl_seconds=ttl,
                )
                self._recorded(e)
            except IntegrityError:
                continue  # another process wrote the writer stream meanwhile: re-read, retry
            return Token(
                token_id=e.token_id,
                turn_id=turn_id,
                epoch=e.epoch,
                sequence=e.sequence,
                owner=owner,
                pid=pid,
                ttl_seconds=ttl,
                acquired_at=at,
            )
        raise WriterTokenError(f"could not acquire a writer token for {turn_id}: {MAX_RETRIES} conflicts in a row")

    def release(self, token: Token, *, reason: str = "released", now: datetime | None = None) -> bool:
        """Give the token back; False if it was released or reclaimed already."""
        for _ in range(MAX_RETRIES):
            state = self.refresh()
            held = state.held.get(token.epoch)
            if held is None or held.token_id != token.token_id:
                return False
            try:
                self._recorded(
                    WriterTokenReleased(
                        run_id=self.run_id,
                        at=now or self.clock(),
                        token_id=token.token_id,
                        turn_id=token.turn_id,
                        epoch=token.epoch,
                        sequence=state.sequence + 1,
                        reason=reason,
                    )
                )
            except IntegrityError:
                continue
            return True
        raise WriterTokenError(f"could not release writer token {token.token_id}: {MAX_RETRIES} conflicts in a row")

    def reclaim_expired(self, now: datetime | None = None) -> int:
        """Release every token past its TTL (after a crash); returns how many."""
        for _ in range(MAX_RETRIES):
            state = self.refresh()
            try:
                return self._reclaim(state, now or self.clock())
            except IntegrityError:
                continue
        raise WriterTokenError(f"could not reclaim expired writer tokens: {MAX_RETRIES} conflicts in a row")

    def _reclaim(self, state: WriterState, now: datetime) -> int:
        stale = expired(state, now)
        for t in stale:
            self._recorded(
                WriterTokenReleased(
                    run_id=self.run_id,
                    at=now,
                    token_id=t.token_id,
                    turn_id=t.turn_id,
                    epoch=t.epoch,
                    sequence=state.sequence + 1,
                    reason=f"expired: held by pid {t.pid} past its {t.ttl_seconds:g}s TTL",
                )
            )
        return len(stale)

    # ------------------------------------------------------------------ fencing

    def check(self, token: Token, now: datetime | None = None) -> None:
        """Raise :class:`StaleEpochError` unless ``token`` is still the live token of its epoch."""
        held = check_write(self.refresh(), token.epoch, now or self.clock())
        if held.token_id != token.token_id:
            raise StaleEpochError(f"stale writer token {token.token_id}: epoch {token.epoch} belongs to another token")

    def guard_write(self, epoch: int, now: datetime | None = None) -> None:
        """Raise :class:`StaleEpochError` unless a live token holds ``epoch``."""
        check_write(self.refresh(), epoch, now or self.clock())
