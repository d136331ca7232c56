"""History as data: a DuckDB copy of the event log for ad-hoc SQL.

``refresh(db)`` brings the copy (``<db>.duckdb``) up to the log's head,
loading only new events; ``run(copy, sql)`` runs one read-only query on it.
The schema (views ``events``, ``runs``, ``units``, ...) is in
:mod:`uok.adapters.analytics.schema` and documented in ``docs/schema.md``.
"""

from uok.adapters.analytics.loader import CopyBusy, CopyError, ForeignCopy, RefreshResult, default_path, refresh
from uok.adapters.analytics.readonly import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT_S,
    QueryFailed,
    QueryRefused,
    QueryResult,
    QueryTimedOut,
    check,
    run,
)
from uok.adapters.analytics.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT_S",
    "SCHEMA_VERSION",
    "CopyBusy",
    "CopyError",
    "ForeignCopy",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "QueryTimedOut",
    "RefreshResult",
    "check",
    "default_path",
    "refresh",
    "run",
]
