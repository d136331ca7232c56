"""``uok verify --export``: prove an audit export without the log.

What is checked, in this order (the first failure is reported, naming the
position when there is one):

1. the manifest ``<export>.manifest.json`` exists and parses;
2. every row: ``hash == SHA-256(prev_hash || row)`` (layout of
   :mod:`uok.domain.log.chain`). For a contiguous export also: positions go
   ``first, first+1, …`` and each ``prev_hash`` is the previous row's
   ``hash``, the first one the manifest's ``prev_hash``. For a ``--run``
   export: positions increase and every row belongs to the run;
3. count, first and last position and the head hash match the manifest;
4. the data file's SHA-256 matches the manifest (catches changes outside
   the rows, e.g. an added blank line or a changed Parquet footer);
5. with a log (``--db``): each row's hash is the log's hash at that
   position, i.e. the export is a faithful extract of *that* log.

Rows are checked before the digest so that a changed byte is reported at
the event it altered rather than as "the file changed".
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson
from uok.adapters.export import COLUMNS, FORMAT_VERSION, Manifest, Row, file_sha256, manifest_path, run_of
from uok.domain.errors import IntegrityFailure
from uok.domain.log.chain import ChainBroken, link


class ExportInvalid(IntegrityFailure):
    """The export cannot be checked or fails a check that names no position."""


@dataclass(frozen=True)
class Verified:
    path: Path
    format: str
    count: int
    first_position: int
    last_position: int
    head_hash: str
    run_id: str | None
    checked_against_log: bool


def load_manifest(path: Path) -> Manifest:
    mpath = manifest_path(path)
    try:
        m = msgspec.json.decode(mpath.read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise ExportInvalid(f"no manifest {mpath} beside the export (it holds the range's anchors)") from None
    except msgspec.ValidationError as e:
        raise ExportInvalid(f"{mpath}: not a uok export manifest: {e}") from None
    except msgspec.DecodeError as e:
        raise ExportInvalid(f"{mpath}: unreadable manifest: {e}") from None
    if m.format_version != FORMAT_VERSION:
        raise ExportInvalid(f"{mpath}: export format version {m.format_version}, this uok reads {FORMAT_VERSION}")
    if not path.is_file():
        raise ExportInvalid(f"no export data file at {path}")
    return m


def _row(d: dict, where: str) -> Row:
    try:
        return Row(
            int(d["position"]),
            str(d["stream"]),
            int(d["version"]),
            str(d["topic"]),
            str(d["payload"]).encode("utf-8"),
            bytes.fromhex(d["hash"]),
            bytes.fromhex(d["prev_hash"]),
        )
    except (KeyError, ValueError, TypeError) as e:
        raise _Unreadable(where, f"{type(e).__name__}: {e}") from None


class _Unreadable(IntegrityFailure):
    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: unreadable row ({why})")


def _jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue  # not a row; the file digest still covers it
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise _Unreadable(f"line {n}", str(e)) from None
            if not isinstance(d, dict):
                raise _Unreadable(f"line {n}", "not an object")
            yield _row(d, f"line {n}")


def _csv(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8", newline="", errors="strict") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except (StopIteration, UnicodeDecodeError):
            raise _Unreadable("line 1", "no header") from None
        if tuple(header) != COLUMNS:
            raise _Unreadable("line 1", f"header is {header}, expected {list(COLUMNS)}")
        try:
            for values in reader:
                where = f"line {reader.line_num}"
                if len(values) != len(COLUMNS):
                    raise _Unreadable(where, f"{len(values)} fields")
                yield _row(dict(zip(COLUMNS, values, strict=False)), where)
        except (UnicodeDecodeError, csv.Error) as e:
            raise _Unreadable(f"line {reader.line_num + 1}", str(e)) from None


def _parquet(path: Path) -> Iterator[Row]:
    """Rows of a Parquet export, read by DuckDB (no pyarrow) in file order,
    a page at a time; a damaged file is unreadable at the rows it spoils."""
    import duckdb

    con = duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})
    try:
        try:
            columns = [r[0] for r in con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).fetchall()]
        except duckdb.Error as e:
            raise _Unreadable("file", f"not a readable Parquet file: {_first_line(e)}") from None
        if not set(COLUMNS) <= set(columns):
            raise _Unreadable("file", f"columns are {columns[1:]}, expected {list(COLUMNS)}")
        n = 0
        try:
            cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM read_parquet(?)", [str(path)])
            while page := cur.fetchmany(5_000):
                for values in page:
                    n += 1
                    yield _row(dict(zip(COLUMNS, values, strict=True)), f"row {n}")
        except duckdb.Error as e:
            raise _Unreadable(f"after row {n}", _first_line(e)) from None
    finally:
        con.close()


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


_READERS = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}


def verify_export(path: Path, store=None) -> Verified:
    """Run the checks in the module docstring; raise :class:`ChainBroken`
    (naming a position) or :class:`ExportInvalid` at the first failure."""
    path = Path(path)
    m = load_manifest(path)
    reader = _READERS.get(m.format)
    if reader is None:
        raise ExportInvalid(f"{path}: unknown export format {m.format!r}")
    count, first, last, prev_row = 0, None, None, None
    expected = m.first_position
    try:
        for row in reader(path):
            if m.contiguous:
                if row.position != expected:
                    raise ChainBroken(
                        expected, f"expected position {expected}, found {row.position} (row missing, added or moved)"
                    )
                want_prev = bytes.fromhex(m.prev_hash) if prev_row is None else prev_row.hash
                if row.prev_hash != want_prev:
                    raise ChainBroken(row.position, "prev_hash is not the hash of the event before it")
            else:
                if prev_row is not None and row.position <= prev_row.position:
                    raise ChainBroken(row.position, f"position {row.position} does not follow {prev_row.position}")
                if m.run_id is not None and run_of(row.payload) != m.run_id:
                    raise ChainBroken(row.position, f"event does not belong to run {m.run_id}")
            if link(row.prev_hash, row.position, row.stream, row.version, row.topic, row.payload) != row.hash:
                raise ChainBroken(row.position, "hash does not match the recomputed hash (the event was altered)")
            first = row if first is None else first
            prev_row = last = row
            count += 1
            expected += 1
    except _Unreadable as e:
        at = expected if m.contiguous else (prev_row.position + 1 if prev_row else m.first_position)
        raise ChainBroken(at, f"{e} after position {prev_row.position if prev_row else 'none'}") from None
    if count != m.count or first is None or last is None:
        raise ExportInvalid(f"{path}: {count} rows, the manifest says {m.count}")
    if (first.position, last.position) != (m.first_position, m.last_position):
        raise ExportInvalid(
            f"{path}: rows span {first.position}..{last.position}, the manifest says "
            f"{m.first_position}..{m.last_position}"
        )
    if last.hash.hex() != m.head_hash or first.prev_hash.hex() != m.prev_hash:
        raise ChainBroken(last.position, "the rows do not end at the manifest's head hash")
    digest = file_sha256(path)
    if digest != m.data_sha256:
        raise ExportInvalid(
            f"{path}: SHA-256 {digest} differs from the manifest's {m.data_sha256} "
            "(the rows verify, so bytes outside them changed)"
        )
    if store is not None:
        _against_log(path, reader, first.position, last.position, store)
    return Verified(path, m.format, count, first.position, last.position, m.head_hash, m.run_id, store is not None)


def _against_log(path: Path, reader, first: int, last: int, store) -> None:
    """Walk the export and the log's range side by side (both in position order)."""
    log = iter(store.read(first - 1, upto=last))
    current = next(log, None)
    for row in reader(path):
        while current is not None and current.position < row.position:
            current = next(log, None)
        if current is None or current.position != row.position or bytes(current.hash) != row.hash:
            raise ChainBroken(row.position, f"the export's event differs from the log's ({store.location})")
