"""The CLI on a PostgreSQL log: chosen by a postgresql:// URL (``--db`` or
``UOK_DB``), the same commands as on a file, and the URL's password never
printed (errors, status, doctor, JSON)."""

from __future__ import annotations

import psycopg
import pytest
from uok.adapters.postgres.target import BadTarget, PgTarget, redact

from tests.conftest import uok

SECRET = "S3cr3t-pw%21x"  # percent-encoded "!" too: the decoded form must not leak either


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def no_secret(*texts: str) -> None:
    for text in texts:
        assert "S3cr3t" not in text, text


def test_urls_are_parsed_and_shown_without_their_password() -> None:
    t = PgTarget.parse(f"postgresql://bob:{SECRET}@db.example:6543/logs?schema=team_a&sslmode=disable")
    assert t.schema == "team_a"
    assert t.display == "postgresql://bob:***@db.example:6543/logs?schema=team_a&sslmode=disable"
    assert "schema" not in t.conninfo and "sslmode=disable" in t.conninfo
    assert "S3cr3t" not in repr(t) and "S3cr3t" not in str(t)
    assert t.scrub("failed for S3cr3t-pw!x and S3cr3t-pw%21x") == "failed for *** and ***"
    assert PgTarget.parse("postgres://h/db").schema == "public"
    assert redact("postgresql://u:p@h/d?password=zz&x=1") == "postgresql://u:***@h/d?password=***&x=1"
    for bad in ("postgresql://h/db?schema=Bad-Name", "postgresql://h:notaport/db", "/tmp/x.db"):
        with pytest.raises(BadTarget) as exc:
            PgTarget.parse(bad)
        assert "S3cr3t" not in str(exc.value)


def test_run_status_verify_events_doctor_on_postgres_never_print_the_password(pg_server, demo_plan, tmp_path) -> None:
    url = with_password(pg_server.schema_url())
    r = uok("run", str(demo_plan), "--db", url, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    outputs = [r.stdout, r.stderr]
    for args in (("status",), ("verify",), ("verify", "--json"), ("events", "--json"), ("doctor", "--json")):
        r = uok(*args, "--db", url, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr)
        outputs += [r.stdout, r.stderr]
    no_secret(*outputs)
    events = sum(1 for line in outputs[8].splitlines() if line.strip())  # `uok events --json`: one per line
    assert f"ok: {events} events, PostgreSQL guards ok" in outputs[4]
    r = uok("status", cwd=tmp_path, env={"UOK_DB": url})  # UOK_DB selects it too
    assert r.returncode == 0 and "plan demo: completed=12" in r.stdout


def test_unreachable_server_missing_log_and_foreign_schema_are_one_line_errors(pg_server, tmp_path) -> None:
    foreign = pg_server.schema_url("someone_else")
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS someone_else")
        conn.execute("CREATE TABLE IF NOT EXISTS someone_else.orders (id int)")
    cases = [
        (("status", "--db", f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere"), 1, "cannot connect to PostgreSQL"),
        (("status", "--db", with_password(pg_server.schema_url())), 2, "no event log at"),
        (("verify", "--db", with_password(foreign)), 3, "not a uok event log"),
        (("bus", "send", "a", "b", "{}", "--db", with_password(foreign)), 3, "not a uok event log"),
        (("status", "--db", "postgresql://127.0.0.1/x?schema=No-Good"), 2, "plain lower-case name"),
    ]
    for args, code, message in cases:
        r = uok(*args, cwd=tmp_path)
        assert (r.returncode, message in r.stderr) == (code, True), (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        no_secret(r.stdout, r.stderr)
    with psycopg.connect(pg_server.url) as conn:  # the foreign schema was left as it was
        assert (
            conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'someone_else'"
            ).fetchone()[0]
            == 1
        )
