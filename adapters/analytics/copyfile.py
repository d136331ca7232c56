"""The analytical copy's file: where it lives, how it is opened, whose it is.

The copy (:mod:`uok.adapters.analytics.loader` keeps it up to date) is a
DuckDB file beside the log, or in the user's cache when the log's folder is
read-only; it holds everything the log holds, so DuckDB creates its files
0600. Only one process may write it: an opener waits, within a bound, while
another holds its lock (a long query reading it). A ``--copy`` file uok did
not create is someone's data and is refused before anything opens it for
writing. Split out of :mod:`uok.adapters.analytics.loader`, which re-exports
these names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
from uok.adapters.analytics import sources
from uok.domain.errors import InputError, RuntimeFailure

__all__ = ["CopyBusy", "ForeignCopy", "connect", "default_path", "private_files", "refuse_foreign"]

_LOCK_WAIT_S = 30.0  # how long to wait for another process holding the copy


def default_path(db: Path | str) -> Path:
    """The copy lives beside a log file: ``<db>.duckdb`` (on read-only
    storage: ``<cache>/uok/<name>-<digest of its path>.duckdb``). A PostgreSQL log's
    copy is ``.uok/pg-<digest of its URL without the password>.duckdb`` in
    the working directory (the tracked hash catches a different log there)."""
    if isinstance(db, Path):
        beside = db.with_name(db.name + ".duckdb")
        if os.access(beside.parent, os.W_OK) or (beside.exists() and os.access(beside, os.W_OK)):
            return beside
        return _cache_dir() / f"{db.name}-{hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:16]}.duckdb"
    digest = hashlib.sha256(sources.label(db).encode()).hexdigest()[:16]
    return Path(".uok") / f"pg-{digest}.duckdb"


def _cache_dir() -> Path:
    """Where the copy of a log on read-only storage lives: the user's cache
    (``$XDG_CACHE_HOME/uok``, else ``~/.cache/uok``), created private."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "uok"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files DuckDB creates meanwhile (the copy, its WAL) are 0600: the copy
    holds everything the log holds."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


class CopyBusy(RuntimeFailure, RuntimeError):
    """Another process holds the copy (a long query reading it): it cannot be refreshed now."""


def connect(
    path: Path, *, read_only: bool, config: dict | None = None, wait: float = _LOCK_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Open the copy, waiting up to ``wait`` seconds while another process holds its lock."""
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class ForeignCopy(InputError):
    """The ``--copy`` file is a DuckDB database (or another file) uok did not
    create: refreshing it would drop every table and view in it."""


def refuse_foreign(copy: Path) -> None:
    """Refuse, without changing a byte, a ``--copy`` that is not a copy uok
    made (no ``_uok_copy`` table): its tables are someone's data."""
    try:
        if copy.stat().st_size == 0:
            return
    except FileNotFoundError:
        return
    try:
        con = connect(copy, read_only=True)
    except duckdb.Error as e:
        raise ForeignCopy(
            f"--copy {copy} exists and is not a DuckDB database uok can use ({str(e).strip().splitlines()[0]}); "
            "choose another path"
        ) from None
    try:
        ours = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_uok_copy'").fetchall()[0][0]
        tables = con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0]
    finally:
        con.close()
    if not ours:
        raise ForeignCopy(
            f"--copy {copy} is a DuckDB database uok did not create ({tables} tables); refusing to change it "
            "(choose another path)"
        )
