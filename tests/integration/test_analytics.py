"""`uok sql` and the DuckDB copy: same answers as the projections, loads only
new events, refuses anything but one read-only query, rebuilds when stale."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest
from uok.adapters import analytics
from uok.adapters.analytics import loader, readonly, schema
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.events import MessageSent

from bench.eventgen import fill
from tests.conftest import FIXTURES, json_lines, uok


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """One recorded demo run (real subprocesses), shared by the module's tests."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(FIXTURES / "plans", root / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    db = root / "d.db"
    r = uok("run", str(root / "plan" / "demo.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    return db


@pytest.fixture(scope="module")
def gen_db(tmp_path_factory) -> Path:
    """5,000 generated events of every kind (runs, gates, costs, breakers, messages)."""
    db = tmp_path_factory.mktemp("gen") / "g.db"
    with SqliteEventStore(db, synchronous="NORMAL") as store:
        fill(store, 5_000, seed=3)
    return db


def sql_json(db: Path, query: str, *extra: str) -> list[dict]:
    r = uok("sql", query, "--db", str(db), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json_lines(r.stdout)


def projection_states(db: Path, names: list[str]) -> dict:
    from uok.adapters.readmodels import ReadModels

    with SqliteEventStore(db) as store:
        return ReadModels(store).runner.states(names)


def stderr_lines(r) -> list[str]:
    """stderr without the interpreter's runpy warning (``python -m`` of a
    module its package imports), which is not uok's output."""
    lines = r.stderr.splitlines()
    return [ln for ln in lines if "RuntimeWarning" not in ln and "unpredictable behaviour" not in ln]


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


# ------------------------------------------------------------------ same answers


def test_demo_counts_equal_the_projections(demo_db: Path):
    units = sql_json(demo_db, "SELECT plan_id, state, count(*) AS n FROM units GROUP BY ALL")
    gates = sql_json(demo_db, "SELECT gate_id, outcome, count(*) AS n FROM gate_runs GROUP BY ALL")
    states = projection_states(demo_db, ["units", "gates"])
    expected_units = Counter()
    for plan_id, part in states["units"].items():
        for u in part.units.values():
            expected_units[(plan_id, u.display_state)] += 1
    assert {(r["plan_id"], r["state"]): r["n"] for r in units} == dict(expected_units)
    expected_gates = {(g, o): n for g, h in states["gates"].items() for o, n in h.by_outcome.items()}
    assert expected_gates, "the demo plan runs gates"
    assert {(r["gate_id"], r["outcome"]): r["n"] for r in gates} == expected_gates
    # and `uok status` agrees on the units too
    status = orjson.loads(uok("status", "--db", str(demo_db), "--json").stdout)
    assert {(p, s): n for p, v in status["plans"].items() for s, n in v["by_state"].items()} == dict(expected_units)


def test_generated_log_matches_every_projection(gen_db: Path):
    states = projection_states(gen_db, ["units", "gates", "costs", "runs", "turns", "inbox"])
    units = sql_json(gen_db, "SELECT state, count(*) AS n FROM units GROUP BY ALL")
    want = Counter(u.display_state for part in states["units"].values() for u in part.units.values())
    assert {r["state"]: r["n"] for r in units} == dict(want)

    costs = sql_json(gen_db, "SELECT model, sum(cost_usd) AS usd, sum(input_tokens) AS tin FROM costs GROUP BY ALL")
    by_model: dict[str, list[float]] = {}
    for run in states["costs"].values():
        for model, m in run.by_model.items():
            acc = by_model.setdefault(model, [0.0, 0])
            acc[0] += m.usd
            acc[1] += m.input_tokens
    assert {r["model"]: r["tin"] for r in costs} == {m: v[1] for m, v in by_model.items()}
    for r in costs:
        assert r["usd"] == pytest.approx(by_model[r["model"]][0])

    runs = sql_json(gen_db, "SELECT status, count(*) AS n FROM runs GROUP BY ALL")
    assert {r["status"]: r["n"] for r in runs} == dict(Counter(r.status for r in states["runs"].values()))

    turns = sql_json(gen_db, "SELECT coalesce(status, 'in-flight') AS s, count(*) AS n FROM turns GROUP BY ALL")
    want_turns = Counter()
    for part in states["turns"].values():
        want_turns.update(part.finished)
        want_turns["in-flight"] += len(part.in_flight)
    assert {r["s"]: r["n"] for r in turns} == +want_turns

    msgs = sql_json(gen_db, "SELECT count(*) AS total, count(*) FILTER (WHERE NOT is_read) AS unread FROM messages")[0]
    inbox = states["inbox"]
    assert msgs["total"] == inbox.total
    assert msgs["unread"] == sum(b.unread for b in inbox.agents.values())

    ev = sql_json(gen_db, "SELECT count(*) AS n, max(position) AS head, count(DISTINCT hash) AS hashes FROM events")[0]
    assert ev == {"n": 5000, "head": 5000, "hashes": 5000}


def test_typed_views_answer_the_same_before_and_after_catching_up(gen_db: Path, tmp_path: Path):
    """The typed views are complete even when their tables lag (the tail is
    read from the JSON on the fly); catching up only makes them fast."""
    copy = tmp_path / "c.duckdb"
    r = analytics.refresh(gen_db, copy)  # no typed table caught up
    assert r.materialized == {}
    q = "SELECT gate_id, outcome, count(*), sum(duration_ms) FROM gate_runs GROUP BY ALL ORDER BY ALL"
    lazy = analytics.run(copy, q).rows
    r = analytics.refresh(gen_db, copy, typed="all")
    assert r.materialized["gate_run"] > 0
    assert analytics.run(copy, q).rows == lazy
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM mat_gate_run").fetchone()[0] == r.materialized["gate_run"]


# ------------------------------------------------------------------ incremental


def test_second_query_sees_new_events_and_loads_only_them(tmp_path: Path):
    db = tmp_path / "x.db"
    with SqliteEventStore(db) as store:
        fill(store, 300, seed=1)
    r = uok("sql", "SELECT count(*) AS n FROM messages", "--db", str(db), "--json", "-v")
    assert r.returncode == 0, r.stderr
    before = json_lines(r.stdout)[0]["n"]
    assert "tracked position 0 -> 300, loaded 300 new events" in r.stderr
    assert (tmp_path / "x.db.duckdb").exists()
    assert (tmp_path / "x.db.duckdb").stat().st_mode & 0o777 == 0o600

    with SqliteEventStore(db) as store:
        log = EventLog(store)
        at = datetime(2026, 2, 1, tzinfo=UTC)
        log.append([MessageSent(at=at, message_id=f"new-{i}", sender="a", recipient="b") for i in range(7)])
    r = uok("sql", "SELECT count(*) AS n FROM messages", "--db", str(db), "--json", "-v")
    assert r.returncode == 0, r.stderr
    assert json_lines(r.stdout)[0]["n"] == before + 7
    assert "tracked position 300 -> 307, loaded 7 new events" in r.stderr
    assert "message_sent+7" in r.stderr  # only the 7 new rows were extracted
    r = uok("sql", "SELECT 1 AS one", "--db", str(db), "-v")
    assert "loaded 0 new events" in r.stderr


def test_rebuilds_on_schema_version_mismatch_and_on_a_different_log(tmp_path: Path):
    db = tmp_path / "x.db"
    with SqliteEventStore(db) as store:
        fill(store, 200, seed=1)
    copy = analytics.default_path(db)
    assert analytics.refresh(db).rebuilt == "new copy"
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE _uok_copy SET schema_version = 0")
    r = analytics.refresh(db)
    assert r.rebuilt.startswith("schema version 0") and r.loaded == 200
    # another log at the same path: same length, different events
    os.remove(db)
    with SqliteEventStore(db) as store:
        fill(store, 200, seed=2)
    r = analytics.refresh(db)
    assert r.rebuilt == "the log no longer matches the copy" and r.loaded == 200
    rows = analytics.run(copy, "SELECT hash FROM events WHERE position = 200").rows
    with SqliteEventStore(db) as store:
        assert rows[0][0] == store.head()[1].hex()


# ------------------------------------------------------------------ read-only


REFUSED = [
    "DELETE FROM events",
    "ATTACH '/etc/passwd' AS p",
    "ATTACH '/etc/passwd' AS p; SELECT 1",
    "INSERT INTO raw_events SELECT * FROM raw_events",
    "UPDATE raw_events SET topic = 'x'",
    "DROP VIEW events",
    "CREATE TABLE t AS SELECT 1",
    "COPY (SELECT * FROM events) TO '/tmp/uok-leak.csv'",
    "EXPORT DATABASE '/tmp/uok-leak'",
    "INSTALL sqlite",
    "LOAD sqlite",
    "PRAGMA enable_profiling",
    "SET enable_external_access = true",
    "SELECT 1; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_json_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM sqlite_scan('x.db', 'events')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM query('DELETE FROM events')",
    "WITH x AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM x",
    "SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))",
    "EXPLAIN ANALYZE DELETE FROM events",
    "CALL pragma_version()",
    "CHECKPOINT",
    "USE memory",
    "SELECT * FROM other_db.main.events",
]


CLI_REFUSED = [
    "DELETE FROM events",
    "ATTACH '/etc/passwd' AS p",
    "COPY (SELECT * FROM events) TO '/tmp/uok-leak.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SET enable_external_access = true",
]


def test_every_refused_shape_is_refused_by_the_check():
    for q in REFUSED:
        with pytest.raises(analytics.QueryRefused):
            analytics.check(q)


def test_writes_attach_and_file_reads_are_refused_and_change_nothing(demo_db: Path):
    assert uok("sql", "SELECT 1", "--db", str(demo_db)).returncode == 0  # the copy exists
    copy = analytics.default_path(demo_db)
    before = (digest(demo_db), digest(copy))
    for q in CLI_REFUSED:
        r = uok("sql", q, "--db", str(demo_db))
        assert r.returncode == 2, (q, r.stdout, r.stderr)
        lines = stderr_lines(r)
        assert len(lines) == 1 and lines[0].startswith("uok: query refused:"), (q, r.stderr)
    assert (digest(demo_db), digest(copy)) == before
    assert not Path("/tmp/uok-leak.csv").exists()
    n = sql_json(demo_db, "SELECT count(*) AS n FROM events")[0]["n"]
    with SqliteEventStore(demo_db) as store:
        assert n == store.head()[0]


def test_read_only_queries_of_many_shapes_are_allowed(gen_db: Path, tmp_path: Path):
    copy = tmp_path / "c.duckdb"
    analytics.refresh(gen_db, copy)
    for q in [
        "SELECT 1",
        "WITH t AS (SELECT type, count(*) AS n FROM events GROUP BY type) SELECT * FROM t ORDER BY n DESC",
        "FROM runs LIMIT 1",
        "SELECT * FROM range(3)",
        "SELECT unit_id FROM unit_transitions UNION SELECT unit_id FROM turns",
        "EXPLAIN SELECT * FROM events",
        "DESCRIBE events",
        "SUMMARIZE costs",
        "SHOW TABLES",
        "SELECT table_name FROM information_schema.tables",
        "SELECT j.key FROM events, json_each(events.payload) AS j LIMIT 3",
        "select count(*) from EVENTS",
    ]:
        analytics.run(copy, q)  # raises if refused or failed


def test_the_query_connection_is_sealed_even_without_the_parser_check(gen_db: Path, tmp_path: Path):
    """Defense in depth: skip layer 1 and the connection still refuses."""
    copy = tmp_path / "c.duckdb"
    analytics.refresh(gen_db, copy)
    con = readonly.seal(loader.connect(copy, read_only=True, config=readonly.SAFE_CONFIG))
    try:
        for q, err in [
            ("SELECT * FROM read_csv('/etc/passwd')", duckdb.PermissionException),
            ("ATTACH '/tmp/other.duckdb' AS o", duckdb.PermissionException),
            ("DELETE FROM raw_events", duckdb.Error),
            ("SET enable_external_access = true", duckdb.Error),
            ("COPY raw_events TO '/tmp/uok-leak.parquet'", duckdb.Error),
        ]:
            with pytest.raises(err):
                con.execute(q)
        assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    finally:
        con.close()
    assert not Path("/tmp/uok-leak.parquet").exists()


def test_cli_errors_are_one_line(tmp_path: Path, gen_db: Path):
    r = uok("sql", "SELECT 1", "--db", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no event log" in r.stderr
    r = uok("sql", "SELEKT 1", "--db", str(gen_db))
    assert r.returncode == 2 and "not valid SQL" in r.stderr
    r = uok("sql", "SELECT nope FROM events", "--db", str(gen_db))
    assert r.returncode == 2 and stderr_lines(r)[0].startswith("uok: query failed:")
    for r in (uok("sql", "SELECT 1", "--db", str(tmp_path / "missing.db")), uok("sql", "SELEKT", "--db", str(gen_db))):
        assert "Traceback" not in r.stderr and len(stderr_lines(r)) == 1


def test_output_formats(gen_db: Path):
    q = "SELECT type, count(*) AS n FROM events WHERE type IN ('KernelEntered', 'KernelExited') GROUP BY type ORDER BY type"
    table = uok("sql", q, "--db", str(gen_db)).stdout.splitlines()
    assert table[0].split() == ["type", "n"] and table[-1].endswith("rows)")
    csv = uok("sql", q, "--db", str(gen_db), "--format", "csv").stdout.splitlines()
    assert csv[0] == "type,n" and re.fullmatch(r"KernelEntered,\d+", csv[1])
    rows = sql_json(gen_db, "SELECT type, payload, ts FROM events WHERE position = 1")
    assert rows[0]["type"] == "KernelEntered" and isinstance(rows[0]["payload"]["pid"], int)  # JSON embedded as JSON
    assert rows[0]["ts"].endswith("+00:00")


def test_every_view_and_column_is_documented(gen_db: Path):
    rows = sql_json(gen_db, "SELECT 1 AS x", "--schema")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()
    sections = {m.group(1): m.group(2) for m in re.finditer(r"### `(\w+)`\n(.*?)(?=\n### |\n## |\Z)", doc, re.S)}
    assert set(sections) >= set(schema.VIEWS)
    listed = Counter(r["relation"] for r in rows)
    assert set(listed) == set(schema.VIEWS)
    for r in rows:
        assert f"| `{r['column_name']}` |" in sections[r["relation"]], (r["relation"], r["column_name"])
    assert f"schema version {schema.SCHEMA_VERSION})" in doc.splitlines()[0]


def test_a_tampered_log_is_refused_naming_the_position(tmp_path: Path):
    """Every event loaded into the copy has its chain hash checked (in
    DuckDB, against the stored hash of the event before it)."""
    import apsw

    db = tmp_path / "x.db"
    with SqliteEventStore(db) as store:
        fill(store, 1_200, seed=4)
    assert (
        uok("sql", "SELECT count(*) FROM events", "--db", str(db), "--copy", str(tmp_path / "a.duckdb")).returncode == 0
    )
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER events_no_update")
    payload = bytes(conn.execute("SELECT payload FROM events WHERE position = 1111").fetchall()[0][0])
    conn.execute(
        "UPDATE events SET payload = ? WHERE position = 1111", (payload.replace(b'"at":"2026', b'"at":"2020'),)
    )
    conn.close()
    r = uok("sql", "SELECT count(*) FROM events", "--db", str(db), "--copy", str(tmp_path / "b.duckdb"))
    assert r.returncode == 3, r.stderr
    assert "position 1111" in stderr_lines(r)[0] and r.stdout == ""
    # a one-bit change of a stored hash is named at its own position too
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")  # opening the store re-created the guard
    conn.execute("UPDATE events SET payload = ? WHERE position = 1111", (payload,))
    h = bytes(conn.execute("SELECT hash FROM events WHERE position = 500").fetchall()[0][0])
    conn.execute("UPDATE events SET hash = ? WHERE position = 500", (bytes([h[0] ^ 1]) + h[1:],))
    conn.close()
    r = uok("sql", "SELECT 1", "--db", str(db), "--copy", str(tmp_path / "c.duckdb"))
    assert r.returncode == 3 and "position 500" in stderr_lines(r)[0]
