"""Opening the projection machinery for a CLI command: the log, the
projection store in the same file, and a runner over every registered
projection (``uok.projections.registry.ALL``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from uok.adapters.cli.common import open_store

from uok.errors import InputError


class ReadModels:
    def __init__(self, store, *, batch: int | None = None, snapshot_every: int | None = None):
        from uok.adapters.projection_store import SqliteProjectionStore
        from uok.projections import registry
        from uok.projections.runner import DEFAULT_BATCH, ProjectionRunner, snapshot_interval

        self.store = store
        self.pstore = SqliteProjectionStore(store)
        self.runner = ProjectionRunner(
            self.pstore,
            self.pstore,
            registry.ALL,
            batch=batch or DEFAULT_BATCH,
            snapshot_every=snapshot_every or snapshot_interval(os.environ),
        )

    def head(self) -> int:
        return self.store.head()[0]

    def catch_up(self) -> None:
        """Bring every read model up to the head (their positions are tracked,
        so this folds only what was appended since the last command)."""
        self.runner.catch_up()

    def check_position(self, position: int, what: str = "position") -> int:
        head = self.head()
        if position < 0 or position > head:
            raise InputError(f"{what} {position} is outside the log (head is {head})")
        return position


@contextmanager
def read_models(args: argparse.Namespace, **kw) -> Iterator[ReadModels]:
    store = open_store(args)
    try:
        yield ReadModels(store, **kw)
    finally:
        store.close()


def names_or_error(names: list[str] | None) -> list[str] | None:
    from uok.projections import registry

    if not names:
        return None
    known = [p.name for p in registry.ALL]
    for n in names:
        if n not in known:
            raise InputError(f"no projection named {n!r} (known: {', '.join(known)})")
    return names
