"""The web view's SQL box: one read-only query over the DuckDB views of the
whole history, exactly as ``uok sql`` runs it (the same three layers of
refusal in :mod:`uok.adapters.analytics.readonly`; the copy beside the log
is brought up to date first, and is a cache, never the log)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

MAX_ROWS = 1000


class SqlBox:
    def __init__(self, db: Path, copy: Path | None = None):
        from uok.adapters import analytics

        self.db = Path(db)
        self.copy = copy or analytics.default_path(self.db)
        self.lock = threading.Lock()
        self._schema: list[tuple[str, list[str]]] | None = None

    def answer(self, query: str) -> dict[str, Any]:
        """``result`` (columns, rows; at most MAX_ROWS), or ``error``, plus the schema."""
        import duckdb
        from uok.adapters import analytics
        from uok.domain.log.chain import ChainBroken

        out: dict[str, Any] = {"result": None, "error": "", "truncated": False}
        with self.lock:
            try:
                relations = analytics.check(query) if query.strip() else set()
                analytics.refresh(self.db, self.copy, typed=analytics.schema.typed_needed(relations))
                out["schema"] = self.schema()
                if query.strip():
                    result = analytics.run(self.copy, query)
                    out["truncated"] = len(result.rows) > MAX_ROWS
                    result.rows = result.rows[:MAX_ROWS]
                    out["result"] = result
            except analytics.QueryRefused as e:
                out["error"] = f"query refused: {e}"
            except analytics.QueryFailed as e:
                out["error"] = f"query failed: {e}"
            except (ChainBroken, analytics.CopyError) as e:
                out["error"] = f"the log cannot be copied: {e}"
            except (duckdb.Error, OSError) as e:
                out["error"] = f"cannot bring the analytical copy {self.copy} up to date: {e}"
            out.setdefault("schema", self._schema or [])
        return out

    def schema(self) -> list[tuple[str, list[str]]]:
        if self._schema is None:
            from uok.adapters import analytics

            views = sorted(analytics.schema.VIEWS)
            query = (
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_name IN ("
                + ", ".join(f"'{v}'" for v in views)
                + ") ORDER BY table_name, ordinal_position"
            )
            cols: dict[str, list[str]] = {v: [] for v in views}
            for table, column in analytics.run(self.copy, query).rows:
                cols[table].append(column)
            self._schema = list(cols.items())
        return self._schema
