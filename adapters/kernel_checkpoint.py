"""A run starts from the kernel's durable snapshot and the verified chain
prefix, and leaves the read models current when it ends.

What is stored (through the projection repository, so it works on SQLite
and PostgreSQL alike, beside the read models, under the name ``kernel``):

* the snapshot's parts (:mod:`uok.domain.kernel.snapshot`), written only
  where they changed;
* its head: the position P it was folded up to, the chain hash of the event
  at P, and the snapshot format's version.

The head is also the record of the verified chain prefix: a snapshot is
only ever written from a fold that recomputed every hash up to P (from
GENESIS, or from an earlier such prefix). A start checks the stored hash at
P against the recorded one (a different log at the same path, or a log
rewritten before P, is folded from zero), then reads and verifies only the
events after P, anchored at that hash. ``uok verify`` still recomputes the
whole chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import msgspec
from uok.adapters.eventlog import EventLog
from uok.domain.kernel import Kernel, KernelState
from uok.domain.kernel import snapshot as ksnap
from uok.projections.port import ProjectionConflict, ProjectionWrite

NAME = "kernel"
SAVE_AFTER = 2_000
"""A start that folded at least this many events writes a snapshot before
the run begins; below that, folding them again at the next start costs less
than writing one (a few ms per thousand events)."""


class KernelCheckpoint:
    """Restores a kernel folded up to the head, and snapshots one."""

    def __init__(self, log: EventLog, repo: Any, *, save_after: int = SAVE_AFTER):
        self.log, self.repo, self.save_after = log, repo, save_after
        self._stored: dict[str, bytes] = {}  # part key -> digest, as stored
        self._position = 0  # where the stored snapshot is (0: none)
        self._version: int | None = None

    def restore(self) -> tuple[Kernel, int]:
        """A kernel (no run entered) holding the fold of the log up to the
        head, and that head's position; only events after the stored
        snapshot are read (and their chain hashes checked)."""
        state, base = self._load()
        kernel = Kernel(state)
        upto = self.log.store.head()[0]
        apply = kernel.apply
        for _, e in self.log.events(after=base, upto=upto, only=Kernel.folded_topics()):
            apply(e)
        return kernel, upto

    def _load(self) -> tuple[KernelState, int]:
        head = self.repo.heads().get(NAME)
        self._stored, self._position = {}, 0
        self._version = None  # a snapshot not used is replaced whole by the next save
        if head is None or head.version != ksnap.VERSION or head.position <= 0:
            return KernelState(), 0
        if self.repo.hash_at(head.position) != head.hash:  # another log, or one rewritten before P
            return KernelState(), 0
        stored = self.repo.load_parts(NAME)
        if not ksnap.intact(stored):  # damaged bytes: the log, not the snapshot, is the truth
            return KernelState(), 0
        try:
            state = ksnap.restore({k: data for k, (_d, data) in stored.items()})
        except (msgspec.DecodeError, ValueError, TypeError):  # a core this uok cannot read
            return KernelState(), 0
        self._stored = {k: d for k, (d, _data) in stored.items()}
        self._position, self._version = head.position, head.version
        return state, head.position

    @property
    def position(self) -> int:
        """Where the stored snapshot is (0: none)."""
        return self._position

    def save(self, kernel: Kernel, position: int) -> bool:
        """Snapshot ``kernel`` (which must hold the fold up to ``position``
        and drive no run) unless a snapshot at or past it is stored. Returns
        True if one was written; a concurrent writer's newer one wins."""
        if position <= self._position:
            return False
        parts, count = ksnap.changed_parts(kernel.state, self._stored)
        hash_ = self.repo.hash_at(position) or b""
        if self._version != ksnap.VERSION:
            self.repo.reset(NAME, ksnap.VERSION, rebuilding=False)
            self._version, self._position = ksnap.VERSION, 0
        write = ProjectionWrite(
            name=NAME,
            version=ksnap.VERSION,
            expected_position=self._position,
            position=position,
            hash=hash_,
            rebuilding=False,
            parts=parts,
            part_count=count,
        )
        try:
            self.repo.commit([write])
        except ProjectionConflict:
            return False
        self._stored.update({k: d for k, (d, _data) in parts.items()})
        self._position = position
        return True


CATCH_UP_LIMIT = 200_000
"""A run's end catches the read models up only if none lags further behind
than this: the events of the run and of a few before it. Read models never
built on a long log (or left far behind) are not rebuilt at the end of a
run, which would keep it waiting for minutes; ``uok projections rebuild``
(or ``uok ui``) builds them, and every run keeps them current from then on."""


class RunCheckpoints:
    """What a run does with the durable snapshot and the read models: it
    starts from the snapshot (writing a new one when the start had to fold
    ``save_after`` events or more), and at the end catches the read models
    up over what it appended, so ``uok status`` reads nothing old. The
    end step is bookkeeping: a failure there never changes the run's
    result (the next command folds forward from where they are)."""

    def __init__(self, log: EventLog, *, read_models: Callable[[], Any] | None = None, save_after: int = SAVE_AFTER):
        from uok.adapters.log_store import projection_store

        self.log = log
        self.checkpoint = KernelCheckpoint(log, projection_store(log.store), save_after=save_after)
        self.read_models = read_models  # built at the end: a run's start imports no projection

    def restore(self) -> Kernel:
        kernel, position = self.checkpoint.restore()
        if position - self.checkpoint.position >= self.checkpoint.save_after:
            self.checkpoint.save(kernel, position)
        return kernel

    def after_run(self) -> None:
        if self.read_models is None:
            return
        with contextlib.suppress(Exception):
            rm = self.read_models()
            if max((st.lag for st in rm.runner.status()), default=0) <= CATCH_UP_LIMIT:
                rm.catch_up()
