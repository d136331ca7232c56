"""One test suite, two stores: logs on apsw files or in PostgreSQL schemas.

The ``logs`` fixture (see ``tests/conftest.py``) is parametrised over
``apsw`` and ``postgres``. Each test gets its own log targets: files in
its ``tmp_path``, or fresh schemas (``?schema=t_<random>``) in a database
this test session created (``uok_test_<pid>_<random>``, dropped at the
end), so tests never see each other's events and can run in parallel.

PostgreSQL is expected at ``UOK_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, the CI server). If it
cannot be reached the PostgreSQL half of the suite FAILS with the reason:
it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

ADMIN_URL_ENV = "UOK_TEST_PG"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("apsw", "postgres")


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def _with_db(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


class PgServer:
    """The session's own database on the test server."""

    def __init__(self) -> None:
        import psycopg
        from uok.adapters.postgres.target import redact

        self.admin = admin_url()
        self.dbname = f"uok_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        try:
            with psycopg.connect(self.admin, autocommit=True, connect_timeout=10) as conn:
                _drop_orphans(conn)
                conn.execute(f"CREATE DATABASE \"{self.dbname}\" ENCODING 'UTF8' TEMPLATE template0")
        except psycopg.Error as e:
            pytest.fail(
                f"PostgreSQL tests need a server at {redact(self.admin)} (set {ADMIN_URL_ENV}); "
                f"it could not be used: {str(e).strip().splitlines()[0]}",
                pytrace=False,
            )
        self.url = _with_db(self.admin, self.dbname)

    def schema_url(self, schema: str | None = None) -> str:
        return f"{self.url}?schema={schema or 't_' + uuid.uuid4().hex[:12]}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def _drop_orphans(conn) -> None:
    """Drop the databases of test sessions that died without dropping theirs
    (``uok_test_<pid>_...`` whose process is gone from this machine)."""
    for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname ~ '^uok_test_[0-9]+_'").fetchall():
        if not Path(f"/proc/{name.split('_')[2]}").exists():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Logs:
    """Log targets of one backend for one test: ``new``, ``fixture``, ``copy``, ``open``."""

    def __init__(self, backend: str, tmp_path: Path, server: PgServer | None):
        self.backend, self.tmp_path, self.server = backend, tmp_path, server

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"

    def new(self, name: str = "log") -> Path | str:
        """A target holding no log yet."""
        if self.server is not None:
            return self.server.schema_url()
        return self.tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.db"

    def open(self, target: Path | str, **kw):
        from uok.adapters.log_store import open_log_store

        return open_log_store(target, **kw)

    def fixture(self, name: str) -> Path | str:
        """The fixture log ``name`` imported (hash-checked) into a new log."""
        from uok.adapters.ndjson_log import import_log

        from tests.tt_support import LOGS

        target = self.new(name)
        import_log(LOGS / f"{name}.ndjson", target).close()
        return target

    def copy(self, source: Path | str) -> Path | str:
        """A new log holding ``source``'s events (a file copy on apsw)."""
        if self.server is None and isinstance(source, Path):
            target = self.new(source.stem)
            shutil.copy(source, target)
            return target
        from uok.adapters.log_copy import copy_log

        target = self.new()
        with self.open(source) as src, self.open(target, create=True, synchronous="NORMAL") as dst:
            copy_log(src, dst)
        return target


def tamper(target: Path | str, old: bytes, new: bytes) -> None:
    """Change the first stored payload holding ``old`` (same length) behind
    the store's back: the bytes of the file, or an UPDATE with the
    append-only trigger disabled, as an attacker with the server's rights could."""
    assert len(old) == len(new)
    if isinstance(target, Path):
        data = target.read_bytes()
        i = data.index(old)
        target.write_bytes(data[:i] + new + data[i + len(old) :])
        return
    import psycopg
    from uok.adapters.postgres.target import PgTarget

    t = PgTarget.parse(target)
    with psycopg.connect(t.conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute(f"SET LOCAL search_path = {t.schema}")
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update")
        cur = conn.execute(
            "UPDATE events SET payload = overlay(payload PLACING %s FROM position(%s IN payload)) "
            "WHERE position = (SELECT min(position) FROM events WHERE position(%s IN payload) > 0)",
            (new, old, old),
        )
        assert cur.rowcount == 1
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update")
