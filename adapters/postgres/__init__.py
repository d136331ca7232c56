"""The event log on PostgreSQL: a store shared by several hosts.

Chosen by a ``postgresql://`` URL as ``--db`` (or ``UOK_DB``); needs the
``postgres`` extra (``pip install 'uok[postgres]'``: psycopg 3 and
psycopg_pool). See docs/scale-out.md.
"""

from uok.adapters.postgres.target import BadTarget, PgTarget, is_postgres_url, redact

__all__ = ["BadTarget", "PgTarget", "is_postgres_url", "redact"]
