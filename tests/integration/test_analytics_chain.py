"""The chain check of `uok sql`'s load on a log of many pages: SQLite packs
each page (sources.PACKED), every row is hashed (in C where the extension
was built, else by DuckDB and hashlib); any damage anywhere in a large log
makes `uok sql` exit 3 naming the first damaged position. The damage cases
run through both checkers (``checker``)."""

from __future__ import annotations

import os
from pathlib import Path

import apsw
import duckdb
import nanoarrow as na
import pytest
from uok.adapters.analytics import batches, loader, reader, sources
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log.chain import GENESIS, ChainBroken
from uok.domain.log.store import NewRecord

from bench.eventgen import fill
from tests.conftest import uok
from tests.stores import tamper

EVENTS = 4 * loader.PAGE_ROWS + 1_234  # five pages, the last one partial
MIDDLE = 2 * loader.PAGE_ROWS + 777  # inside the third page


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("big") / "big.db"
    with SqliteEventStore(db, synchronous="NORMAL") as store:
        fill(store, EVENTS, seed=11)
    return db


def damaged(big_log: Path, tmp_path: Path, *statements: tuple[str, tuple]) -> Path:
    """A copy of the log with the guard triggers dropped and ``statements`` run."""
    db = tmp_path / "damaged.db"
    src = apsw.Connection(str(big_log), flags=apsw.SQLITE_OPEN_READONLY)
    dst = apsw.Connection(str(db))
    with dst.backup("main", src, "main") as b:
        b.step()
    src.close()
    dst.execute("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete")
    for sql, args in statements:
        dst.execute(sql, args)
    dst.close()
    return db


def payload_at(db: Path, position: int) -> bytes:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return bytes(conn.execute("SELECT payload FROM events WHERE position = ?", (position,)).fetchall()[0][0])
    finally:
        conn.close()


@pytest.fixture(params=["c", "duckdb-hashlib"])
def checker(request, monkeypatch) -> dict[str, str]:
    """Each damage case through both checkers: the C check
    (``batches.FIRST_BROKEN``) and, with it switched off, DuckDB and
    hashlib. In process the switch is monkeypatched; for the CLI it is
    ``UOK_ANALYTICS_NATIVE=0``. The C check must be built on CI."""
    if request.param == "c":
        if batches.FIRST_BROKEN is None:
            if os.environ.get("CI"):
                pytest.fail("the C chain check (uok.adapters.analytics._chain) was not built")
            pytest.skip("the C chain check was not built here (no C compiler or libcrypto)")
        return {"UOK_ANALYTICS_NATIVE": "1"}
    monkeypatch.setattr(batches, "FIRST_BROKEN", None)
    monkeypatch.setattr(batches, "OFFSETS", None)
    monkeypatch.setattr(batches, "SPLIT_PAGE", None)
    return {"UOK_ANALYTICS_NATIVE": "0"}


def sql_exit(db: Path, tmp_path: Path, env: dict[str, str] | None = None):
    return uok("sql", "SELECT count(*) FROM events", "--db", str(db), "--copy", str(tmp_path / "copy.duckdb"), env=env)


def test_the_whole_large_log_loads_through_packed_pages(big_log: Path, tmp_path: Path, checker):
    r = sql_exit(big_log, tmp_path, checker)
    assert r.returncode == 0, r.stderr
    assert str(EVENTS) in r.stdout.split()


def test_packed_pages_are_the_batches_a_row_by_row_read_builds(big_log: Path, checker):
    """Same Arrow values, column by column, from either way of reading a
    page (a packed page's offsets summed in C or in Python): the bytes DuckDB
    or the C check hash are the chain's preimage either way."""
    source = sources.open_rows(big_log)
    try:
        after, prev = loader.PAGE_ROWS, None
        prev = source.head(after)[1]
        packed = source.packed(after, EVENTS, loader.PAGE_ROWS)
        assert packed is not None
        built = [batches.packed_to_batch(packed, prev)]
        if batches.SPLIT_PAGE is not None:  # packed with separators, split in C
            split = source.packed(after, EVENTS, loader.PAGE_ROWS, split=True)
            assert split is not None
            built.append(batches.split_to_batch(split, prev))
        b = batches.rows_to_batch(source.page(after, EVENTS, loader.PAGE_ROWS), prev, after + 1)
    finally:
        source.close()
    for a in built:
        assert a is not None and (a.rows, a.first, a.last, a.last_hash) == (b.rows, b.first, b.last, b.last_hash)
        assert list(na.Array(a.array).iter_tuples()) == list(na.Array(b.array).iter_tuples())
        # and the same buffers for the C check
        assert [x if isinstance(x, int) else bytes(x) for x in a.chain] == [
            x if isinstance(x, int) else bytes(x) for x in b.chain
        ]
    assert a.first == after + 1 and prev != GENESIS


@pytest.mark.parametrize(
    "flip",
    [
        pytest.param(lambda p: p[:40] + bytes([p[40] ^ 0x01]) + p[41:], id="one-bit"),
        pytest.param(lambda p: p[:40] + b"\xff" + p[41:], id="not-utf8"),
        pytest.param(lambda p: p[:40] + b"\x00" + p[41:], id="nul-byte"),
    ],
)
def test_a_flipped_byte_in_the_middle_of_a_large_log_is_named(big_log: Path, tmp_path: Path, flip, checker):
    p = payload_at(big_log, MIDDLE)
    db = damaged(big_log, tmp_path, ("UPDATE events SET payload = ? WHERE position = ?", (flip(p), MIDDLE)))
    r = sql_exit(db, tmp_path, checker)
    assert r.returncode == 3, r.stderr
    assert f"hash chain broken at position {MIDDLE}:" in r.stderr and r.stdout == ""


def test_a_deleted_row_a_swap_and_a_wrong_link_are_named(big_log: Path, tmp_path: Path, checker):
    a, b = payload_at(big_log, MIDDLE), payload_at(big_log, MIDDLE + 1)
    damages = {
        # a deleted row: a gap in the positions of its page
        "deleted": [("DELETE FROM events WHERE position = ?", (MIDDLE,))],
        # two rows' payloads swapped, each row keeping its position: reordered events
        "swapped": [
            ("UPDATE events SET payload = ? WHERE position = ?", (b, MIDDLE)),
            ("UPDATE events SET payload = ? WHERE position = ?", (a, MIDDLE + 1)),
        ],
        # a forged stored hash: the next row's link to it breaks too
        "forged-hash": [("UPDATE events SET hash = randomblob(32) WHERE position = ?", (MIDDLE,))],
    }
    for name, statements in damages.items():
        (tmp_path / name).mkdir()
        r = sql_exit(damaged(big_log, tmp_path / name, *statements), tmp_path / name, checker)
        assert r.returncode == 3, (name, r.stderr)
        assert f"hash chain broken at position {MIDDLE}:" in r.stderr, (name, r.stderr)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("UPDATE events SET payload = CAST(payload AS TEXT) WHERE position = ?", id="payload-as-text"),
        pytest.param("UPDATE events SET hash = substr(hash, 1, 31) WHERE position = ?", id="short-hash"),
        pytest.param("UPDATE events SET version = 'v' || version WHERE position = ?", id="version-as-text"),
    ],
)
def test_a_row_of_other_types_is_refused(big_log: Path, tmp_path: Path, sql: str, checker):
    """The packed read leaves such a page to the row-by-row read, which
    refuses it as before (exit 3)."""
    db = damaged(big_log, tmp_path, (sql, (MIDDLE,)))
    r = sql_exit(db, tmp_path, checker)
    assert r.returncode == 3, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("backlog", [0, 10**9], ids=["every-page-in-python", "every-page-in-duckdb"])
def test_either_checker_names_the_first_damaged_position(big_log: Path, tmp_path: Path, monkeypatch, backlog: int):
    """Without the C check, the reader checks pages itself while DuckDB is
    behind (BACKLOG_GROUPS): forced each way, a flipped bit is named at its
    position, and a whole log loads."""
    monkeypatch.setattr(batches, "FIRST_BROKEN", None)
    monkeypatch.setattr(reader, "BACKLOG_GROUPS", backlog)
    whole = loader.refresh(big_log, tmp_path / "whole.duckdb")
    assert whole.loaded == EVENTS
    p = payload_at(big_log, MIDDLE)
    db = damaged(
        big_log,
        tmp_path,
        ("UPDATE events SET payload = ? WHERE position = ?", (p[:40] + bytes([p[40] ^ 4]) + p[41:], MIDDLE)),
    )
    with pytest.raises(ChainBroken) as e:
        loader.refresh(db, tmp_path / "copy.duckdb")
    assert e.value.position == MIDDLE


@pytest.mark.parametrize("threads", [1, 3])
def test_the_load_on_any_duckdb_thread_count(big_log: Path, tmp_path: Path, monkeypatch, threads: int, checker):
    """The load runs DuckDB on ``load_threads()`` threads (every core but the
    reader's): any count loads the whole log and names a flipped bit, and
    the typed catch-up afterwards gets the connection's own count back."""
    monkeypatch.setattr(reader, "LOAD_THREADS", threads)
    seen: list[int] = []
    materialize = loader.materialize

    def recording(duck, tables="all"):
        seen.append(duck.execute("SELECT current_setting('threads')").fetchall()[0][0])
        return materialize(duck, tables)

    monkeypatch.setattr(loader, "materialize", recording)
    copy = tmp_path / "whole.duckdb"
    whole = loader.refresh(big_log, copy, typed="all")
    assert whole.loaded == EVENTS and sum(whole.materialized.values()) > 0
    with duckdb.connect() as fresh:
        assert seen == [fresh.execute("SELECT current_setting('threads')").fetchall()[0][0]]
    p = payload_at(big_log, MIDDLE)
    db = damaged(
        big_log,
        tmp_path,
        ("UPDATE events SET payload = ? WHERE position = ?", (p[:40] + bytes([p[40] ^ 2]) + p[41:], MIDDLE)),
    )
    with pytest.raises(ChainBroken) as e:
        loader.refresh(db, tmp_path / "copy.duckdb")
    assert e.value.position == MIDDLE


def test_a_value_holding_the_packed_separator_loads(tmp_path: Path, checker):
    """A page packed with separators (sources.PACKED_SPLIT) whose stream,
    topic or payload holds the separator byte 0x1e itself cannot be split:
    that page is read row by row, and the whole log loads, every hash checked."""
    db = tmp_path / "sep.db"
    with SqliteEventStore(db, synchronous="NORMAL") as store:
        fill(store, loader.PAGE_ROWS + 10, seed=3)
        store.append(
            [
                NewRecord(stream="odd\x1estream", version=1, topic="Odd", payload=b'{"a":1}'),
                NewRecord(stream="odd\x1estream", version=2, topic="Odd\x1etopic", payload=b'"\x1e"'),
            ]
        )
        head = store.head()[0]
    r = sql_exit(db, tmp_path, checker)
    assert r.returncode == 0, r.stderr
    assert str(head) in r.stdout.split()
    result = loader.refresh(db, tmp_path / "in-process.duckdb")
    assert result.loaded == head
    with duckdb.connect(str(tmp_path / "in-process.duckdb"), read_only=True) as duck:
        assert duck.execute(
            "SELECT count(*) FROM raw_events WHERE stream = 'odd' || chr(30) || 'stream'"
        ).fetchall() == [(2,)]


def test_a_log_altered_on_either_store_is_refused_by_either_checker(logs, tmp_path: Path, checker):
    """A PostgreSQL log is read row by row (sources.StoreRows), an SQLite
    log packed: the same check refuses a payload changed behind the store's
    back on either, naming the same position as `uok verify`."""
    db = logs.fixture("failures")
    fine = uok("sql", "SELECT count(*) FROM events", "--db", str(db), "--copy", str(tmp_path / "a.duckdb"), env=checker)
    assert fine.returncode == 0, fine.stderr
    tamper(db, b'"unit_id":"boom"', b'"unit_id":"bang"')
    verify = uok("verify", "--db", str(db))
    assert verify.returncode == 3 and "hash chain broken at position " in verify.stderr, verify.stderr
    named = verify.stderr.split("hash chain broken at position ")[1].split(":")[0]
    r = uok("sql", "SELECT count(*) FROM events", "--db", str(db), "--copy", str(tmp_path / "b.duckdb"), env=checker)
    assert r.returncode == 3, r.stderr
    assert f"hash chain broken at position {named}:" in r.stderr and r.stdout == ""
