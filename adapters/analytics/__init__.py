"""History as data: a DuckDB copy of the event log for ad-hoc SQL.

``refresh(db)`` brings the copy (``<db>.duckdb``) up to the log's head,
loading only new events; ``run(copy, sql)`` runs one read-only query on it.
The schema (views ``events``, ``runs``, ``units``, ...) is in
:mod:`adapters.analytics.schema` and documented in ``docs/schema.md``.
"""

from adapters.analytics.loader import CopyError, RefreshResult, default_path, refresh
from adapters.analytics.readonly import QueryFailed, QueryRefused, QueryResult, check, run
from adapters.analytics.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION", "CopyError", "QueryFailed", "QueryRefused", "QueryResult", "RefreshResult",
    "check", "default_path", "refresh", "run",
]
