"""Helpers for the projection, time-travel, replay and fork tests: fixture
logs imported into real apsw files, generated kernel logs, row dumps."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
from uok.adapters.eventlog import EventLog
from uok.adapters.log_store import open_log_store, projection_store
from uok.adapters.ndjson_log import import_log
from uok.projections import registry
from uok.projections.runner import ProjectionRunner

from bench.kernel_log import generate
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"
FIXTURE_LOGS = ("demo", "recovery", "failures", "pipeline")


def fixture_db(name: str, directory: Path) -> Path:
    """The fixture log ``name`` imported (hash-checked) into a new file."""
    db = directory / f"{name}.db"
    import_log(LOGS / f"{name}.ndjson", db).close()
    return db


def generated_db(directory: Path, events: int, seed: int = 7) -> Path:
    """A kernel-generated log, made once per directory and size."""
    db = directory / f"gen-{events}-{seed}.db"
    if not db.exists():
        generate(db, events, seed=seed)
    return db


def copy_db(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def open_runner(db: Path | str, projections=None, **kw):
    """(store, projection store, runner over every projection, or over ``projections``)
    on a file or a postgresql:// log."""
    store = open_log_store(db, synchronous="NORMAL")
    ps = projection_store(store)
    return store, ps, ProjectionRunner(ps, ps, registry.ALL if projections is None else projections, **kw)


def log_of(db: Path | str) -> EventLog:
    return EventLog(open_log_store(db))


def event_rows(db: Path | str, upto: int | None = None) -> list[tuple]:
    with open_log_store(db, readonly=True) as store:
        return [msgspec.structs.astuple(r) for r in store.read(0, upto=upto)]


def projection_rows(db: Path | str) -> dict[str, list[tuple]]:
    """Every projection table's rows, ordered: equal dumps = identical read models."""
    store = open_log_store(db, readonly=True)
    try:
        return {
            "state": store.query(
                "SELECT name, version, position, hash, rebuilding, parts FROM projection_state ORDER BY name"
            ),
            "parts": store.query("SELECT name, key, digest, data FROM projection_parts ORDER BY name, key"),
            "snapshots": store.query(
                "SELECT name, version, position, manifest FROM projection_snapshots ORDER BY name, position"
            ),
            "blobs": store.query("SELECT name, digest, data FROM projection_blobs ORDER BY name, digest"),
        }
    finally:
        store.close()
