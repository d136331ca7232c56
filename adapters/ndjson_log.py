"""A text form of an event log, exact to the byte: one JSON object per line
with ``position``, ``stream``, ``version``, ``topic``, ``payload`` (the
stored payload bytes as a UTF-8 string, not re-encoded) and ``hash`` (hex).

Fixture logs are committed in this form (diffable, no SQLite binary in the
repository). Importing appends the records in order to a new log and
checks that every recomputed chain hash equals the recorded one, which
proves the import byte-identical to the log that was exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
from uok.domain.errors import IntegrityFailure
from uok.domain.log.store import NewRecord


class ImportMismatch(IntegrityFailure, ValueError):
    """The imported log's hash or position differs from the recorded one."""


def export_log(store, out: Path) -> int:
    n = 0
    with open(out, "wb") as f:
        for r in store.read(0):
            f.write(
                orjson.dumps(
                    {
                        "position": r.position,
                        "stream": r.stream,
                        "version": r.version,
                        "topic": r.topic,
                        "payload": bytes(r.payload).decode("utf-8"),
                        "hash": bytes(r.hash).hex(),
                    }
                )
                + b"\n"
            )
            n += 1
    return n


def read_lines(path: Path) -> Iterator[dict]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def import_log(path: Path, db: Path | str, *, synchronous: str = "NORMAL"):
    """A new log at ``db`` (a file, or a ``postgresql://`` URL of an empty
    schema) holding exactly the exported events; raises
    :class:`ImportMismatch` at the first hash that does not match."""
    from uok.adapters.stores import is_url, open_event_store

    if not is_url(db) and Path(db).exists():
        raise FileExistsError(db)

    store = open_event_store(db, create=True, synchronous=synchronous)
    if store.head()[0]:
        store.close()
        raise FileExistsError(f"{store.location} already holds events")
    try:
        for row in read_lines(path):
            rec = NewRecord(
                stream=row["stream"], version=row["version"], topic=row["topic"], payload=row["payload"].encode("utf-8")
            )
            [pos] = store.append([rec])
            _head_pos, head_hash = store.head()
            if pos != row["position"] or head_hash.hex() != row["hash"]:
                raise ImportMismatch(f"{path}: event at position {row['position']} does not reproduce its hash")
    except BaseException:
        store.close()
        raise
    return store
