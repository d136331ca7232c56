"""Opening a PostgreSQL event log: connecting once, refusing what is not
ours, creating the schema when allowed.

Separate from the store because it runs once, on a plain connection,
before the pool exists; each step refuses a different problem with one
line naming it (server down or unreachable, server too old, a database
not in UTF-8, a schema holding somebody else's tables, a newer layout).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from uok.adapters.postgres import schema as ddl
from uok.adapters.postgres.errors import NoEventLogError, NotAnEventLogError, first_line, translate
from uok.adapters.postgres.target import PgTarget

CONNECT_TIMEOUT_S = 10


def connect(target: PgTarget, **kwargs) -> psycopg.Connection:
    """A plain autocommit connection; a failure names the server, never the password."""
    try:
        return psycopg.connect(
            target.conninfo,
            autocommit=True,
            connect_timeout=kwargs.pop("connect_timeout", CONNECT_TIMEOUT_S),
            application_name="uok",
            **kwargs,
        )
    except psycopg.Error as e:
        raise translate(e, target, "cannot connect to PostgreSQL") from None


class PgLogOpener:
    def __init__(self, target: PgTarget, *, create: bool):
        self.target, self.create = target, create

    def open(self) -> None:
        conn = connect(self.target)
        try:
            self._check_server(conn)
            self._ensure(conn)
        except psycopg.Error as e:
            raise translate(e, self.target, "cannot open the event log") from None
        finally:
            conn.close()

    def _check_server(self, conn: psycopg.Connection) -> None:
        if conn.info.server_version < ddl.MIN_SERVER:
            raise NotAnEventLogError(
                f"PostgreSQL {conn.info.server_version // 10000} is too old for uok (14 or newer) ({self.target.display})"
            )
        encoding = conn.execute("SHOW server_encoding").fetchall()[0][0]
        if encoding.upper() not in ("UTF8", "UTF-8"):
            raise NotAnEventLogError(
                f"database encoding is {encoding}, uok needs UTF8 (its hash chain hashes UTF-8 text) "
                f"({self.target.display})"
            )

    def _tables(self, conn: psycopg.Connection) -> set[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (self.target.schema,)
        ).fetchall()
        return {r[0] for r in rows}

    def _meta(self, conn: psycopg.Connection) -> dict[str, str]:
        q = sql.SQL("SELECT key, value FROM {}.uok_meta").format(sql.Identifier(self.target.schema))
        return dict(conn.execute(q).fetchall())

    def _missing(self, conn: psycopg.Connection) -> set[str] | None:
        """What the schema lacks of a complete log of our version (None: it is
        empty); raises if it holds someone else's tables or a newer layout."""
        tables = self._tables(conn)
        if not tables:
            return None
        if "uok_meta" not in tables:
            raise NotAnEventLogError(
                f"schema {self.target.schema} holds tables that are not a uok event log "
                f"({', '.join(sorted(tables)[:5])}) ({self.target.display})"
            )
        meta = self._meta(conn)
        if meta.get("application") != ddl.APPLICATION:
            raise NotAnEventLogError(f"schema {self.target.schema} is not a uok event log ({self.target.display})")
        version = int(meta.get("schema_version", "0") or 0)
        if version > ddl.SCHEMA_VERSION:
            raise NotAnEventLogError(
                f"the event log has schema version {version}, newer than {ddl.SCHEMA_VERSION} ({self.target.display})"
            )
        triggers = {
            r[0]
            for r in conn.execute(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'events'",
                (self.target.schema,),
            )
        }
        return (set(ddl.TABLES) - tables) | (set(ddl.TRIGGERS) - triggers)

    def _ensure(self, conn: psycopg.Connection) -> None:
        missing = self._missing(conn)
        if missing == set():
            return
        if not self.create:
            if missing is None:
                raise NoEventLogError(
                    f"no event log at {self.target.display} (run `uok run PLAN --db URL` first, or `uok copy` into it)"
                )
            raise NotAnEventLogError(
                f"the event log at {self.target.display} is incomplete (missing {', '.join(sorted(missing))}); "
                "a command that writes re-creates what is missing"
            )
        self._install(conn)

    def _install(self, conn: psycopg.Connection) -> None:
        try:
            with conn.transaction():
                conn.execute(ddl.install_lock(self.target.schema))
                if self._missing(conn) == set():
                    return  # another process installed it while we waited for the lock
                for statement in ddl.ddl(self.target.schema):
                    conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as e:
            raise translate(e, self.target, f"cannot create the event log ({first_line(e)})") from None
