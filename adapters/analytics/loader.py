"""Keeping the DuckDB copy of the event log up to date.

DuckDB cannot read our SQLite file offline (its sqlite extension is
downloaded at run time) and would not push ``position > N`` down anyway,
so the copy is a projection like any other: it tracks the last position it
loaded (with that event's hash) in ``_uok_copy`` and each refresh appends
only the events after it.

The hot path avoids Python objects per event wherever it can:

* a reader thread pulls pages of the log (SQLite through apsw, or any
  other store, :mod:`uok.adapters.analytics.sources`) and turns each page
  into an Arrow batch built from buffers (:mod:`uok.adapters.analytics.batches`):
  payloads, streams, topics and hashes are joined into one buffer each
  instead of being converted value by value (a value-by-value conversion
  costs ~1 µs per value; the buffers ~0.15). On SQLite the joining is done
  by SQLite itself (``group_concat`` over the page), so no Python object
  per row is made at all;
* every row's hash is recomputed and compared with the stored hash before
  it is inserted: in C, a page per call with the GIL released
  (``_chain.first_broken``, OpenSSL's SHA-256: ~0.23 µs per row) where that
  extension was built; otherwise by DuckDB (``sha256`` over the preimage
  pieces the batch carries, in DuckDB's threads) or, while DuckDB is behind,
  by the reader thread itself (``hashlib``); see
  :func:`uok.adapters.analytics.reader.read_pages`;
* the main thread hands groups of batches to DuckDB (which reads them
  through the Arrow PyCapsule interface): each group's hashes are checked
  as it arrives, and every ~100k rows are inserted, with the GIL released,
  so reading and loading overlap on two cores;
* DuckDB runs on every core but one
  (:func:`uok.adapters.analytics.reader.load_threads`): the reader thread
  keeps that one busy, and on 2 cores DuckDB's second thread only competed
  with it;
* while loading, the GIL switch interval is 0.5 ms instead of 5: every
  DuckDB call releases the GIL and then waited up to 5 ms for the busy
  reader thread to yield it back (this alone halved the load time);
* the garbage collector is paused: a page of rows is thousands of tuples,
  and the collections they trigger cost 30-40 % of the read time while
  finding nothing to collect.

The tracked position moves in the same DuckDB transaction as the rows, so
an interrupted refresh leaves a consistent copy that the next one
continues. A transaction spans up to two million events: committing every
100k-row chunk was measured to cost more than the inserts themselves.
A copy whose schema version differs, or whose tracked event no longer
matches the log (another log at the same path), is rebuilt.

Typed tables (``mat_*``, see :mod:`uok.adapters.analytics.schema`) are caught
up separately, inside DuckDB, only for the relations a query reads.

Where the copy's file lives, how it is opened and when it is refused (a
file uok did not make) is :mod:`uok.adapters.analytics.copyfile`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import sys
import threading
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import duckdb
import nanoarrow as na
from nanoarrow.c_array_stream import CArrayStream
from uok.adapters.analytics import schema, sources
from uok.adapters.analytics.batches import C_SCHEMA, Batch, check_natively
from uok.adapters.analytics.copyfile import (
    _LOCK_WAIT_S,
    CopyBusy,
    ForeignCopy,
    connect,
    default_path,
    private_files,
    refuse_foreign,
)
from uok.adapters.analytics.reader import PAGE_ROWS, load_threads, log_head, read_pages
from uok.domain.errors import IntegrityFailure
from uok.domain.log.chain import GENESIS, ChainBroken

CHUNK_ROWS = 24 * PAGE_ROWS  # rows per INSERT (98,304)
# Under one DuckDB row group (122,880 rows): INSERTs of a row group or more
# have DuckDB compress and write row groups during the INSERT ("optimistic
# writes"), which was measured to cost 0.8-1.0 more CPU-seconds per million
# events (6.16 against 5.15-5.42, load ~3) for no wall-clock gain.
COMMIT_ROWS = 2_000_000  # rows per DuckDB transaction (commits are costly: fewer is faster)

__all__ = [  # the copy's file (where, how opened, whose) is uok.adapters.analytics.copyfile's
    "CHUNK_ROWS",
    "COMMIT_ROWS",
    "PAGE_ROWS",
    "CopyBusy",
    "CopyError",
    "ForeignCopy",
    "RefreshResult",
    "connect",
    "default_path",
    "materialize",
    "private_files",
    "refresh",
    "refuse_foreign",
]

_NAMES = ["position", "stream", "version", "topic", "payload", "hash"]


class CopyError(IntegrityFailure):
    """The copy could not be brought up to date: the log is unreadable or
    damaged. (A broken hash chain raises :class:`ChainBroken` instead.)"""


@dataclass(frozen=True)
class RefreshResult:
    path: Path
    before: int  # tracked position before the refresh
    position: int  # tracked position after it (the log's head)
    loaded: int  # events loaded by this refresh
    rebuilt: str  # why the copy was rebuilt from zero ("" if it was not)
    seconds: float  # opening the copy and loading the new events
    materialized: dict[str, int]  # typed rows extracted, per typed table caught up
    materialize_seconds: float


# --------------------------------------------------------------------- the copy


def _tracked(duck: duckdb.DuckDBPyConnection) -> tuple[int, int, bytes] | None:
    """(schema version, loaded position, loaded hash), or None for a new/alien file."""
    try:
        rows = duck.execute("SELECT schema_version, loaded_position, loaded_hash FROM _uok_copy").fetchall()
    except duckdb.CatalogException:
        return None
    return (rows[0][0], rows[0][1], bytes(rows[0][2])) if rows else None


def _drop_everything(duck: duckdb.DuckDBPyConnection) -> None:
    for (name,) in duck.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
    ).fetchall():
        duck.execute(f'DROP VIEW IF EXISTS "{name}"')
    for (name,) in duck.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall():
        duck.execute(f'DROP TABLE IF EXISTS "{name}"')


def _create(duck: duckdb.DuckDBPyConnection, source: Path | str) -> None:
    duck.execute("BEGIN")
    _drop_everything(duck)
    for ddl in schema.all_ddl():
        duck.execute(ddl)
    duck.execute("INSERT INTO _uok_copy VALUES (?, 0, ?, ?)", [schema.SCHEMA_VERSION, b"", sources.label(source)])
    duck.execute("COMMIT")


_VERIFY = (
    "SELECT min(position) FROM chunk WHERE sha256(prev || position_be || stream_len || encode(stream) || "
    "version_be || topic_len || encode(topic) || payload_len || encode(payload)) <> lower(hex(hash))"
)


def _stream(batches: list[Batch]) -> na.Array:
    return na.Array(CArrayStream.from_c_arrays([b.array for b in batches], C_SCHEMA))


def _verify(duck: duckdb.DuckDBPyConnection, batches: list[Batch]) -> None:
    """Check the hash of every row of ``batches`` not checked yet: in C
    (:func:`uok.adapters.analytics.batches.check_natively`, with the GIL
    released) where it was built, else in DuckDB."""
    todo = [b for b in batches if not b.verified and not check_natively(b)]
    if not todo:
        return
    try:
        duck.register("chunk", _stream(todo))
        broken = duck.execute(_VERIFY).fetchall()[0][0]
    except duckdb.Error as e:
        raise CopyError(f"could not check events {todo[0].first}..{todo[-1].last}: {e}") from e
    finally:
        duck.unregister("chunk")
    if broken is not None:
        raise ChainBroken(broken, "stored hash does not match the recomputed hash (the log was altered or damaged)")


def _insert(duck: duckdb.DuckDBPyConnection, batches: list[Batch]) -> None:
    """Insert checked ``batches`` (inside the caller's transaction)."""
    try:
        duck.register("chunk", _stream(batches))
        duck.execute(f"INSERT INTO raw_events SELECT {', '.join(_NAMES)} FROM chunk")
    except duckdb.Error as e:
        raise CopyError(
            f"could not load events {batches[0].first}..{batches[-1].last} into the analytical copy: {e}"
        ) from e
    finally:
        duck.unregister("chunk")


def materialize(duck: duckdb.DuckDBPyConnection, tables: AbstractSet[str] | str = "all") -> dict[str, int]:
    """Catch the typed tables up with ``raw_events``; rows added per table."""
    names = sorted(schema.TYPED_BY_TABLE) if tables == "all" else sorted(tables)
    added: dict[str, int] = {}
    duck.execute("BEGIN")
    try:
        for name in names:
            t = schema.TYPED_BY_TABLE[name]
            insert, update = schema.materialize_sql(t)
            added[name] = duck.execute(insert).fetchall()[0][0]
            duck.execute(update)
        duck.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            duck.execute("ROLLBACK")
        raise
    return added


def refresh(
    db: Path | str,
    copy: Path | None = None,
    *,
    typed: AbstractSet[str] | str = frozenset(),
    wait: float | None = None,
) -> RefreshResult:
    """Bring the copy of ``db`` up to the log's head, then catch up the
    typed tables named in ``typed`` (``"all"`` for every one); returns what
    it did. A file at ``copy`` that uok did not create is refused
    (:class:`ForeignCopy`, exit 2), never rebuilt. ``wait``: seconds to wait
    for another process holding the copy, then :class:`CopyBusy`."""
    started = time.perf_counter()
    db = db if isinstance(db, str) and sources.is_url(db) else Path(db)
    copy = Path(copy) if copy is not None else default_path(db)
    refuse_foreign(copy)
    copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with private_files():
        # no Python replacement scans: DuckDB sees only the tables we register
        try:
            duck = connect(
                copy,
                read_only=False,
                config={"python_enable_replacements": False},
                wait=_LOCK_WAIT_S if wait is None else wait,
            )
        except duckdb.IOException as e:
            if "lock" in str(e).lower() and wait is not None:
                raise CopyBusy(str(e)) from None
            raise
        try:
            if copy.exists():
                os.chmod(copy, 0o600)
            tracked = _tracked(duck)
            if tracked is None:
                rebuilt, position, tracked_hash = "new copy", 0, GENESIS
            elif tracked[0] != schema.SCHEMA_VERSION:
                rebuilt, position, tracked_hash = f"schema version {tracked[0]} -> {schema.SCHEMA_VERSION}", 0, GENESIS
            else:
                rebuilt, position, tracked_hash = "", tracked[1], tracked[2]
            try:
                head, hash_at = log_head(db, position)
            except sources.READ_ERRORS as e:
                raise CopyError(f"could not read the event log {sources.label(db)}: {e}") from e
            if not rebuilt and position and (position > head or hash_at != tracked_hash):
                rebuilt = "the log no longer matches the copy"
            if rebuilt:
                _create(duck, db)
                position = 0
            before = position
            prev = GENESIS if position == 0 else tracked_hash
            loaded = _load(duck, db, position, prev, head)
            load_s = time.perf_counter() - started
            added = materialize(duck, typed) if typed else {}
            return RefreshResult(
                copy, before, before + loaded, loaded, rebuilt, load_s, added, time.perf_counter() - started - load_s
            )
        finally:
            duck.close()


def _load(duck: duckdb.DuckDBPyConnection, db: Path | str, after: int, prev: bytes, upto: int) -> int:
    if upto <= after:
        return 0
    threads = duck.execute("SELECT current_setting('threads')").fetchall()[0][0]
    duck.execute(f"SET threads = {int(min(threads, load_threads()))}")
    try:
        return _load_rows(duck, db, after, prev, upto)
    finally:
        with contextlib.suppress(duckdb.Error):  # never hide why the load failed
            duck.execute(f"SET threads = {int(threads)}")


def _load_rows(duck: duckdb.DuckDBPyConnection, db: Path | str, after: int, prev: bytes, upto: int) -> int:
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    reader = threading.Thread(
        target=read_pages, args=(db, after, prev, upto, q, stop), name="uok-analytics-read", daemon=True
    )
    gc_was_enabled, switch = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    # The main thread gives the GIL up for every DuckDB call; with the default
    # 5 ms switch interval it then waits that long for the reader to yield.
    sys.setswitchinterval(min(switch, 0.0005))
    loaded = in_txn = 0
    try:
        reader.start()
        duck.execute("BEGIN")
        checked: list[Batch] = []  # checked, not inserted yet
        while True:
            item = q.get()
            if isinstance(item, ChainBroken):
                raise item
            if isinstance(item, BaseException):
                raise CopyError(f"could not read the event log {sources.label(db)}: {item}") from item
            if item is not None:
                _verify(duck, item)
                checked += item
            if checked and (item is None or sum(b.rows for b in checked) >= CHUNK_ROWS):
                _insert(duck, checked)
                n, last, last_hash = sum(b.rows for b in checked), checked[-1].last, checked[-1].last_hash
                checked = []
                loaded += n
                in_txn += n
            if in_txn and (item is None or in_txn >= COMMIT_ROWS):
                duck.execute("UPDATE _uok_copy SET loaded_position = ?, loaded_hash = ?", [last, last_hash])
                duck.execute("COMMIT")
                in_txn = 0
                duck.execute("BEGIN")
            if item is None:
                duck.execute("COMMIT")
                return loaded
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            duck.execute("ROLLBACK")
        raise
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a reader waiting on a full queue
                q.get_nowait()
        reader.join(timeout=10)
        sys.setswitchinterval(switch)
        if gc_was_enabled:
            gc.enable()
