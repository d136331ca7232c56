"""The tables, triggers and append function of an event log in a PostgreSQL schema.

Same columns and guarantees as the SQLite log (:mod:`uok.adapters.sqlite_open`):

* ``events(position, stream, version, topic, payload, hash)``, ``position``
  the primary key, ``UNIQUE(stream, version)`` for optimistic concurrency;
* triggers refuse UPDATE, DELETE (per row) and TRUNCATE (per statement) on
  ``events`` through any connection;
* ``uok_append(streams, versions, topics, payloads)`` appends a batch. It
  takes a *transaction-scoped advisory lock* (``pg_advisory_xact_lock``,
  keyed by the schema), reads the head, assigns ``head + 1 ...`` and the
  chain hashes of :mod:`uok.domain.log.chain`, inserts, and ``pg_notify``\\ s the
  new head. The lock is released only when the appending transaction ends,
  after its rows became visible, so appends commit one after another in
  position order: positions are gapless, and no reader can see position
  ``n + 1`` before ``n`` is committed. (A sequence would leave gaps on
  rollback and hand out numbers in an order other than commit order.)
  The hash is computed in the server with ``sha256`` over the layout of
  :mod:`uok.domain.log.chain`: ``int8send``/``int4send`` are the big-endian
  integers, ``convert_to(..., 'UTF8')`` the UTF-8 bytes, so the same events
  get byte-identical hashes on either store (tests check it);
* ``tracking`` (the eventsourcing library's tracking, as in SQLite) and the
  projection tables of :mod:`uok.adapters.postgres.projections`: read models
  and snapshots live beside the log, in the same schema;
* ``uok_meta``: what this schema is (``application``) and its layout version.
"""

from __future__ import annotations

import hashlib

from psycopg import sql
from uok.domain.log.chain import GENESIS

SCHEMA_VERSION = 1
APPLICATION = "uok event log"
LOCK_CLASS = 0x756F6B00  # "uok\0": first key of the append lock (second key: hashtext(schema))
INSTALL_CLASS = 0x756F6B01  # first key of the install lock (second key: hashtext(schema))
MIN_SERVER = 140000  # CREATE OR REPLACE TRIGGER

TRIGGERS = ("events_no_update", "events_no_delete", "events_no_truncate")
TABLES = (
    "uok_meta",
    "events",
    "tracking",
    "projection_state",
    "projection_parts",
    "projection_snapshots",
    "projection_blobs",
)


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of the log in ``schema`` (short, one per schema)."""
    return "uok_" + hashlib.sha256(schema.encode()).hexdigest()[:24]


def ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)
    fmt = {"s": s, "genesis": sql.Literal(GENESIS), "channel": sql.Literal(channel(schema))}
    fmt["lock"] = sql.SQL("{}, hashtext({})").format(sql.Literal(LOCK_CLASS), sql.Literal(schema))
    statements = [
        "CREATE SCHEMA IF NOT EXISTS {s}",
        "CREATE TABLE IF NOT EXISTS {s}.uok_meta (key text PRIMARY KEY, value text NOT NULL)",
        """CREATE TABLE IF NOT EXISTS {s}.events (
            position bigint PRIMARY KEY CHECK (position > 0),
            stream   text NOT NULL,
            version  bigint NOT NULL,
            topic    text NOT NULL,
            payload  bytea NOT NULL,
            hash     bytea NOT NULL CHECK (octet_length(hash) = 32),
            UNIQUE (stream, version))""",
        """CREATE OR REPLACE FUNCTION {s}.uok_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'uok: events are append-only (% refused)', TG_OP
                 USING ERRCODE = 'integrity_constraint_violation'; END $$""",
        """CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE ON {s}.events
           FOR EACH ROW EXECUTE FUNCTION {s}.uok_refuse_change()""",
        """CREATE OR REPLACE TRIGGER events_no_delete BEFORE DELETE ON {s}.events
           FOR EACH ROW EXECUTE FUNCTION {s}.uok_refuse_change()""",
        """CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON {s}.events
           FOR EACH STATEMENT EXECUTE FUNCTION {s}.uok_refuse_change()""",
        """CREATE OR REPLACE FUNCTION {s}.uok_append(
               streams text[], versions bigint[], topics text[], payloads bytea[]) RETURNS bigint
           LANGUAGE plpgsql VOLATILE AS $$
           DECLARE
               n int := coalesce(cardinality(streams), 0);
               pos bigint;
               h bytea;
               st bytea;
               tp bytea;
               positions bigint[] := '{{}}';
               hashes bytea[] := '{{}}';
           BEGIN
               IF n = 0 THEN RETURN 0; END IF;
               IF current_setting('transaction_isolation') <> 'read committed' THEN
                   RAISE EXCEPTION 'uok: appends need READ COMMITTED isolation, not %',
                       current_setting('transaction_isolation');
               END IF;
               PERFORM pg_advisory_xact_lock({lock});
               SELECT e.position, e.hash INTO pos, h FROM {s}.events e ORDER BY e.position DESC LIMIT 1;
               IF pos IS NULL THEN pos := 0; h := {genesis}; END IF;
               FOR i IN 1 .. n LOOP
                   pos := pos + 1;
                   st := convert_to(streams[i], 'UTF8');
                   tp := convert_to(topics[i], 'UTF8');
                   h := sha256(h || int8send(pos) || int4send(octet_length(st)) || st || int8send(versions[i])
                               || int4send(octet_length(tp)) || tp || int4send(octet_length(payloads[i])) || payloads[i]);
                   positions := positions || pos;
                   hashes := hashes || h;
               END LOOP;
               INSERT INTO {s}.events (position, stream, version, topic, payload, hash)
                   SELECT * FROM unnest(positions, streams, versions, topics, payloads, hashes);
               PERFORM pg_notify({channel}, pos::text);
               RETURN pos - n + 1;
           END $$""",
        """CREATE TABLE IF NOT EXISTS {s}.tracking (
            application_name text PRIMARY KEY,
            notification_id  bigint NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS {s}.projection_state (
            name       text PRIMARY KEY,
            version    bigint NOT NULL,
            position   bigint NOT NULL,
            hash       bytea NOT NULL,
            rebuilding boolean NOT NULL DEFAULT false,
            parts      bigint NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS {s}.projection_parts (
            name text NOT NULL, key text NOT NULL, digest bytea NOT NULL, data bytea NOT NULL,
            PRIMARY KEY (name, key))""",
        """CREATE TABLE IF NOT EXISTS {s}.projection_snapshots (
            name text NOT NULL, version bigint NOT NULL, position bigint NOT NULL, manifest bytea NOT NULL,
            PRIMARY KEY (name, version, position))""",
        """CREATE TABLE IF NOT EXISTS {s}.projection_blobs (
            name text NOT NULL, digest bytea NOT NULL, data bytea NOT NULL,
            PRIMARY KEY (name, digest))""",
        """INSERT INTO {s}.uok_meta (key, value) VALUES ('application', 'uok event log')
           ON CONFLICT (key) DO NOTHING""",
    ]
    out: list[sql.Composed] = [sql.SQL(t).format(**fmt) for t in statements]
    out.append(
        sql.SQL(
            "INSERT INTO {s}.uok_meta (key, value) VALUES ('schema_version', {v}) ON CONFLICT (key) DO NOTHING"
        ).format(s=s, v=sql.Literal(str(SCHEMA_VERSION)))
    )
    return out


def install_lock(schema: str) -> sql.Composed:
    """Serialises concurrent installers of one schema (CREATE ... IF NOT EXISTS races otherwise)."""
    return sql.SQL("SELECT pg_advisory_xact_lock({}, hashtext({}))").format(
        sql.Literal(INSTALL_CLASS), sql.Literal(schema)
    )
