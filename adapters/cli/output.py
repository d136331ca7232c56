"""What commands print: one convention for every ``--json`` (:data:`CONVENTION`,
also the "JSON output" section of docs/cli.md), and errors."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["CONVENTION", "dumps", "emit", "emit_lines", "err"]

CONVENTION = """
Every command that takes `--json` follows one convention, so a script reads
all of them the same way:

* **stdout holds only JSON, one complete object per line** (NDJSON). Any
  `--json` output can be read line by line, or with `jq`.
* **A result is one object.** A command that answers once (`status`,
  `verify`, `run`, `state`, `diff`, `doctor`, `export`, `bus send`, ...)
  prints exactly one line holding one object: never a bare array or scalar.
* **A listing is one object per record.** A command that lists records
  (`events`, `sql`, `replay`, `bus conversation`) prints one object per
  record and nothing else; no record, no output.
* **Keys are snake_case** (`run_id`, `units_completed`); times are ISO-8601
  strings with their offset; hashes are lowercase hex; positions are
  integers. (`uok sql` rows are keyed by the query's own column names.)
* **Errors are not JSON:** one `uok: ...` line on stderr, and the same exit
  code as without `--json`. Progress displays are off or on stderr.
"""


def _default(value: Any) -> Any:
    import msgspec  # msgspec Structs (manifests, reports, snapshots) as plain JSON

    return msgspec.to_builtins(value, str_keys=True)


def dumps(value: Any) -> bytes:
    """One value as one line of JSON (no trailing newline)."""
    import orjson  # here, not at the top: a command printing text never loads it (~5 ms of imports)

    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def emit(result: Any) -> None:
    """A command's one result: one JSON object on one line."""
    sys.stdout.buffer.write(dumps(result) + b"\n")
    sys.stdout.flush()


def emit_lines(records: Iterable[Any]) -> None:
    """A sequence of records: one JSON object per line (NDJSON)."""
    out = sys.stdout.buffer
    for record in records:
        out.write(dumps(record) + b"\n")
    sys.stdout.flush()


def err(message: str) -> None:
    """One line on stderr, prefixed ``uok: `` once (a message that already
    carries the prefix, e.g. from SQLite's triggers, is not prefixed again)."""
    print(f"uok: {message.removeprefix('uok: ')}", file=sys.stderr)
