"""One writer process of the contention test: ``python -m
tests.reliability.contention_writer DB WRITER COUNT GO_FILE``.

Opens the store, waits for GO_FILE (so all writers start together), then
appends COUNT events one transaction each through
``SqliteEventStore.append``, stream ``w:<WRITER>``, versions 1..COUNT.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log.store import NewRecord


def main() -> None:
    db, writer, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = SqliteEventStore(db, synchronous="NORMAL", busy_timeout_ms=60000)
    while not go.exists():
        time.sleep(0.001)
    stream = f"w:{writer}"
    for v in range(1, count + 1):
        store.append(
            [
                NewRecord(
                    stream=stream, version=v, topic="Contended/v1", payload=b'{"w":"%s","v":%d}' % (writer.encode(), v)
                )
            ]
        )
    store.close()


if __name__ == "__main__":
    main()
