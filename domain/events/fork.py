"""Events of time travel: forking a log at a past position.

A fork is a new log whose positions 1..P are byte-identical copies of the
parent's (same streams, versions, topics, payloads and therefore the same
chain hashes), followed by one ``RunForked``. It says where the history
came from, and it detaches the runs that were open at P from any process:
their pids belonged to the parent's world, and a live process that happens
to reuse such a pid must not keep them open. The next kernel on the fork
closes them as ``recovered`` and carries on from that history.
"""

from __future__ import annotations

import msgspec
from uok.domain.events.base import Event


class ForkOrigin(msgspec.Struct, frozen=True, kw_only=True):
    """Where a forked history was copied from."""

    db_path: str  # the parent log, as given to ``uok fork``
    run_id: str  # the run the fork was taken from
    position: int  # last copied position (P)
    head_hash: str  # hex chain hash of the parent's event at P


class RunForked(Event, frozen=True, kw_only=True):
    """Appended once, right after the copied history (written by the CLI,
    not by a run: ``run_id`` is empty and the stream is ``global``)."""

    forked_from: ForkOrigin
    open_runs: tuple[str, ...] = ()  # runs entered but not exited at P, now detached

    def stream(self) -> str:
        return "fork"
