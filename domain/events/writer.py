"""Events of the writer token: one turn at a time holds the right to write.

The rules are the pure fold in :mod:`uok.domain.policies.writer`; the shell
(``uok.adapters.writer``) claims and releases the token.
"""

from __future__ import annotations

from typing import ClassVar

from uok.domain.events.base import Event


class WriterTokenAcquired(Event, frozen=True, kw_only=True):
    """A turn took the writer token. ``sequence`` is the global monotonic
    write sequence (the version of the ``writer`` stream); ``epoch`` fences
    writes made under older tokens.

    Observed, not decided: the shell reads the ``writer`` stream and claims
    its next version, so the sequence is global across processes (see
    ``uok.domain.policies.writer`` and ``uok.adapters.writer``)."""

    OBSERVED: ClassVar[bool] = True

    token_id: str
    turn_id: str
    epoch: int
    sequence: int
    owner: str = "uok"
    pid: int = 0
    ttl_seconds: float = 300.0

    def stream(self) -> str:
        return "writer"

    def pinned_version(self) -> int | None:
        return self.sequence


class WriterTokenReleased(Event, frozen=True, kw_only=True):
    """A token was given back (``released``) or reclaimed after its TTL
    (``expired``). Takes the next writer sequence, like an acquisition."""

    OBSERVED: ClassVar[bool] = True

    token_id: str
    turn_id: str
    epoch: int
    sequence: int
    reason: str = "released"

    def stream(self) -> str:
        return "writer"

    def pinned_version(self) -> int | None:
        return self.sequence


class PlanLeased(Event, frozen=True, kw_only=True):
    """A run took the lease of its plan: from here on it is the one process
    that may write the plan's units (behaviour §1: one live run per plan).

    ``epoch`` is the version of the plan's ``lease:<plan id>`` stream, one
    more than the last lease the starting process folded. Two processes
    that start the plan at once fold the same epoch and claim the same
    version: exactly one append succeeds (UNIQUE(stream, version)), the
    other writes nothing, not even its ``KernelEntered``. Every later append
    of the run checks in its own transaction that the epoch is still the
    stream's last, so a process that lost the lease cannot write.

    Observed (the shell measured who holds the plan), recorded in the same
    transaction as the run's ``KernelEntered``, after its decisions."""

    OBSERVED: ClassVar[bool] = True

    plan_id: str
    epoch: int
    pid: int = 0
    host: str = ""

    def stream(self) -> str:
        return lease_stream(self.plan_id)

    def pinned_version(self) -> int | None:
        return self.epoch


def lease_stream(plan_id: str) -> str:
    """The stream whose versions are a plan's lease epochs."""
    return f"lease:{plan_id}"
