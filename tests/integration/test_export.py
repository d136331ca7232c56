"""Audit export and verification: byte-identical exports, every format
verifies, one changed byte is named, tampering with the log is caught."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import apsw
import duckdb
import orjson
import pytest
from uok.adapters.export import export, manifest_path
from uok.adapters.export_verify import ExportInvalid, verify_export
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log.chain import GENESIS, ChainBroken, link

from bench.eventgen import fill
from tests.conftest import uok


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """About 3 runs' worth of generated events (every event kind)."""
    db = tmp_path_factory.mktemp("log") / "g.db"
    with SqliteEventStore(db, synchronous="NORMAL") as store:
        fill(store, 2_500, seed=5)
    return db


def last_line(r) -> str:
    return [ln for ln in r.stderr.splitlines() if "RuntimeWarning" not in ln and "unpredictable" not in ln][-1]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_two_exports_are_identical_and_verify(log: Path, tmp_path: Path, fmt: str):
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    assert uok("export", "--db", str(log), "--format", fmt, "--out", str(a)).returncode == 0
    r = uok("export", "--db", str(log), "--format", fmt, "--out", str(b), "--json")
    assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert manifest_path(a).read_bytes() == manifest_path(b).read_bytes()
    for p in (a, manifest_path(a)):
        assert p.stat().st_mode & 0o777 == 0o600
    m = orjson.loads(r.stdout)
    with SqliteEventStore(log) as store:
        head, head_hash = store.head()
    assert (m["count"], m["first_position"], m["last_position"]) == (head, 1, head)
    assert m["head_hash"] == head_hash.hex() and m["prev_hash"] == GENESIS.hex()
    r = uok("verify", "--export", str(a))
    assert r.returncode == 0, r.stderr
    assert head_hash.hex() in r.stdout
    r = uok("verify", "--export", str(a), "--db", str(log), "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["checked_against_log"] is True


def _flip_in_payload(path: Path, line_no: int) -> None:
    lines = path.read_bytes().split(b"\n")
    line = bytearray(lines[line_no - 1])
    i = line.index(b'run_id\\":\\"') + 12  # a character of the run id inside the payload text
    line[i] = ord("X") if line[i] != ord("X") else ord("Y")
    lines[line_no - 1] = bytes(line)
    path.write_bytes(b"\n".join(lines))


def test_one_changed_byte_in_a_jsonl_export_is_named(log: Path, tmp_path: Path):
    out = tmp_path / "e.jsonl"
    assert uok("export", "--db", str(log), "--out", str(out)).returncode == 0
    copy = tmp_path / "copy.jsonl"
    shutil.copy(out, copy)
    shutil.copy(manifest_path(out), manifest_path(copy))
    _flip_in_payload(copy, 1234)  # line n holds position n
    r = uok("verify", "--export", str(copy))
    assert r.returncode == 3
    assert "position 1234" in last_line(r) and "altered" in last_line(r)


def test_one_changed_byte_in_a_csv_export_is_named(log: Path, tmp_path: Path):
    out = tmp_path / "e.csv"
    assert uok("export", "--db", str(log), "--format", "csv", "--out", str(out)).returncode == 0
    text = out.read_text().split("\n")
    row = text[500]  # header + 499 rows before: position 500
    assert row.startswith("500,")
    text[500] = row.replace('""at"":""2026', '""at"":""2027', 1)
    out.write_text("\n".join(text))
    r = uok("verify", "--export", str(out))
    assert r.returncode == 3 and "position 500" in last_line(r)


def test_changed_event_in_a_parquet_export_is_named(log: Path, tmp_path: Path):
    out = tmp_path / "e.parquet"
    assert uok("export", "--db", str(log), "--format", "parquet", "--out", str(out)).returncode == 0
    con = duckdb.connect()  # rewrite the file with one payload changed, as a tamperer would
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?)", [str(out)])
    assert con.execute("SELECT position FROM t LIMIT 1 OFFSET 41").fetchall() == [(42,)]
    con.execute("UPDATE t SET payload = replace(payload, '\"at\"', '\"AT\"') WHERE position = 42")
    out.unlink()
    con.execute(f"COPY (SELECT * FROM t ORDER BY position) TO '{out}' (FORMAT parquet)")
    con.close()
    with pytest.raises(ChainBroken) as e:
        verify_export(out)
    assert e.value.position == 42
    # a raw flipped byte in the file is caught too (exit 3, one line)
    raw = bytearray(out.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    out.write_bytes(bytes(raw))
    r = uok("verify", "--export", str(out))
    assert r.returncode == 3 and "Traceback" not in r.stderr


def test_a_missing_row_and_an_extra_byte_outside_rows_are_caught(log: Path, tmp_path: Path):
    out = tmp_path / "e.jsonl"
    assert uok("export", "--db", str(log), "--out", str(out)).returncode == 0
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(lines[:99] + lines[100:]))  # drop position 100
    with pytest.raises(ChainBroken) as e:
        verify_export(out)
    assert e.value.position == 100
    out.write_bytes(b"\n".join(lines) + b"\n")  # rows intact, one extra byte at the end
    with pytest.raises(ExportInvalid, match="SHA-256"):
        verify_export(out)
    manifest_path(out).unlink()
    r = uok("verify", "--export", str(out))
    assert r.returncode == 3 and "no manifest" in last_line(r)


def test_a_range_export_verifies_standalone(log: Path, tmp_path: Path):
    out = tmp_path / "r.jsonl"
    r = uok("export", "--db", str(log), "--out", str(out), "--from", "1001", "--to", "1500", "--json")
    assert r.returncode == 0, r.stderr
    m = orjson.loads(r.stdout)
    with SqliteEventStore(log) as store:
        before = store.query("SELECT hash FROM events WHERE position = 1000")[0][0]
        at_1500 = store.query("SELECT hash FROM events WHERE position = 1500")[0][0]
    assert (m["count"], m["first_position"], m["last_position"]) == (500, 1001, 1500)
    assert m["prev_hash"] == before.hex() and m["head_hash"] == at_1500.hex()
    assert verify_export(out).count == 500
    for bad in (["--from", "0"], ["--from", "10", "--to", "5"], ["--to", "999999"]):
        r = uok("export", "--db", str(log), "--out", str(tmp_path / "bad.jsonl"), *bad)
        assert r.returncode == 2, bad
    assert not (tmp_path / "bad.jsonl").exists()


def test_run_export_proves_each_row_and_the_log_proves_membership(log: Path, tmp_path: Path):
    out = tmp_path / "run.jsonl"
    r = uok("export", "--db", str(log), "--out", str(out), "--run", "r000002", "--json")
    assert r.returncode == 0, r.stderr
    m = orjson.loads(r.stdout)
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert m["contiguous"] is False and m["count"] == len(rows) > 100
    assert all(json.loads(x["payload"])["run_id"] == "r000002" for x in rows)
    assert uok("verify", "--export", str(out), "--db", str(log)).returncode == 0
    # an altered row is named
    forged = tmp_path / "forged.jsonl"
    shutil.copy(manifest_path(out), manifest_path(forged))
    rows[10]["payload"] = rows[10]["payload"].replace('"at":"2026', '"at":"2025')
    forged.write_bytes(b"\n".join(orjson.dumps(x) for x in rows) + b"\n")
    with pytest.raises(ChainBroken) as e:
        verify_export(forged)
    assert e.value.position == rows[10]["position"]
    # a forger who also recomputes that row's hash passes the standalone
    # check (documented limit of a --run export) but not the check against the log
    x = rows[10]
    x["hash"] = link(
        bytes.fromhex(x["prev_hash"]), x["position"], x["stream"], x["version"], x["topic"], x["payload"].encode()
    ).hex()
    data = b"\n".join(orjson.dumps(x) for x in rows) + b"\n"
    forged.write_bytes(data)
    mf = orjson.loads(manifest_path(forged).read_bytes())
    import hashlib

    mf["data_sha256"] = hashlib.sha256(data).hexdigest()
    manifest_path(forged).write_bytes(orjson.dumps(mf))
    assert verify_export(forged).count == len(rows)
    r = uok("verify", "--export", str(forged), "--db", str(log))
    assert r.returncode == 3 and f"position {x['position']}" in last_line(r)
    r = uok("export", "--db", str(log), "--out", str(tmp_path / "none.jsonl"), "--run", "no-such-run")
    assert r.returncode == 2 and "no events of run" in last_line(r)


def test_tampered_log_fails_verify_at_the_position_and_export_writes_nothing(log: Path, tmp_path: Path):
    db = tmp_path / "t.db"
    with SqliteEventStore(log) as src:
        src.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(log, db)
    assert uok("verify", "--db", str(db)).returncode == 0
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER events_no_update")
    payload = conn.execute("SELECT payload FROM events WHERE position = 777").fetchall()[0][0]
    conn.execute(
        "UPDATE events SET payload = ? WHERE position = 777", (bytes(payload).replace(b'"at":"2026', b'"at":"2024'),)
    )
    conn.close()
    r = uok("verify", "--db", str(db))
    assert r.returncode == 3 and "position 777" in last_line(r)
    out = tmp_path / "x.jsonl"
    r = uok("export", "--db", str(db), "--out", str(out))
    assert r.returncode == 3 and "position 777" in last_line(r)
    assert not out.exists() and not manifest_path(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.jsonl")]  # no temp left behind
    # the range before the damage still exports and verifies
    assert uok("export", "--db", str(db), "--out", str(out), "--to", "776").returncode == 0
    assert verify_export(out).last_position == 776


def test_export_function_rejects_unknown_format(log: Path, tmp_path: Path):
    from uok.adapters.export import ExportError

    with SqliteEventStore(log) as store, pytest.raises(ExportError):
        export(store, tmp_path / "x", "xml")
    assert os.listdir(tmp_path) == []
