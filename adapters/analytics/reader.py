"""The reader thread of the analytical copy's load: pages of the log as
Arrow batches (:mod:`uok.adapters.analytics.batches`), each row's hash
left to the C check or DuckDB, or checked here (:func:`read_pages`)."""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
from pathlib import Path

from uok.adapters.analytics import batches as _batches
from uok.adapters.analytics import sources
from uok.adapters.analytics.batches import Batch, packed_to_batch, rows_to_batch, split_to_batch
from uok.domain.log.chain import ChainBroken

PAGE_ROWS = 4_096  # rows per statement of the log (and per Arrow batch)
GROUP_PAGES = 8  # pages per hand-over to the main thread: DuckDB checks each group as it arrives
BACKLOG_GROUPS = 2  # groups waiting for the main thread: this thread then checks pages itself
LOAD_THREADS: int | None = None  # DuckDB threads during a load; None: one core left to this thread

_SHA = hashlib.sha256
_U64U32 = struct.Struct(">QI").pack
_U32 = struct.Struct(">I").pack


def _verify_rows(rows: list[tuple], prev: bytes) -> None:
    """Check a page of rows against the chain in Python (hashlib: OpenSSL,
    which uses the CPU's SHA instructions where it has them, ~6x faster per
    byte than DuckDB's ``sha256``, but ~1.2 µs of Python per row)."""
    pos, stream, ver, topic, payload, hashes = zip(*rows, strict=False)
    prevs = (prev, *hashes[:-1])
    digests = [
        _SHA(b"".join((pv, _U64U32(p, len(s)), s, _U64U32(v, len(t)), t, _U32(len(pl)), pl))).digest()
        for pv, p, s, v, t, pl in zip(prevs, pos, stream, ver, topic, payload, strict=False)
    ]
    if digests != list(hashes):
        bad = next(p for p, d, h in zip(pos, digests, hashes, strict=False) if d != h)
        raise ChainBroken(bad, "stored hash does not match the recomputed hash (the log was altered or damaged)")


def read_pages(db: Path | str, after: int, prev: bytes, upto: int, out: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: lists of Arrow batches (``GROUP_PAGES`` pages each) of
    the rows ``after < position <= upto`` (``prev`` is the hash at
    ``after``), then ``None``; an exception is passed on instead.

    Where the C check was built (:data:`uok.adapters.analytics.batches.FIRST_BROKEN`),
    every page is read packed and the main thread checks it in C
    (:func:`uok.adapters.analytics.loader._verify`). Without it, each row's
    hash is checked either by DuckDB (the main thread's
    :func:`uok.adapters.analytics.loader._verify`, in DuckDB threads) or here: while ``BACKLOG_GROUPS``
    groups wait for the main thread, DuckDB is the bottleneck and this thread
    has time to spare, so it reads the next page row by row and checks it in
    Python (:func:`_verify_rows`, marked ``verified``). The split follows
    the machine: measured on 2 cores (load ~3-4, CPU-seconds per million
    events): 5.1-5.2 split this way, 5.6-5.8 all in DuckDB, 4.5-4.8 all in
    Python, whose single thread then bounds the wall clock."""
    try:
        source = sources.open_rows(db)
        try:
            batches: list[Batch] = []
            while after < upto and not stop.is_set():
                in_python = _batches.FIRST_BROKEN is None and out.qsize() >= BACKLOG_GROUPS
                split = _batches.SPLIT_PAGE is not None
                packed = None if in_python else source.packed(after, upto, PAGE_ROWS, split)
                to_batch = split_to_batch if split else packed_to_batch
                batch = to_batch(packed, prev) if packed is not None else None
                if batch is None:
                    rows = source.page(after, upto, PAGE_ROWS)
                    if not rows:
                        raise ChainBroken(after + 1, f"the log ends at {after}, before its head {upto}")
                    batch = rows_to_batch(rows, prev, after + 1)
                    if in_python:
                        try:
                            _verify_rows(rows, prev)
                        except ChainBroken:
                            out.put(batches)  # earlier pages first: one of them may be broken earlier
                            raise
                        batch.verified = True
                batches.append(batch)
                after, prev = batch.last, batch.last_hash
                if len(batches) >= GROUP_PAGES:
                    out.put(batches)
                    batches = []
            if batches:
                out.put(batches)
        finally:
            source.close()
        out.put(None)
    except BaseException as e:  # handed to the main thread, which re-raises  # noqa: BLE001
        out.put(e)


def log_head(db: Path | str, position: int) -> tuple[int, bytes | None]:
    """(head position of the log, hash of the event at ``position`` or None)."""
    source = sources.open_rows(db)
    try:
        return source.head(position)
    finally:
        source.close()


def load_threads() -> int:
    """DuckDB's threads during a load: every core but one, which the reader
    thread keeps busy. On 2 cores DuckDB then checks and inserts on one
    thread: measured on the loaded 2-core machine (1M events, 13 pairs
    alternating, load 2-7.6), less CPU in 12 pairs (0.3-1.8 CPU-s) and a
    faster wall clock in 12 than with DuckDB's default (a thread per core),
    whose second thread only competed with the reader."""
    if LOAD_THREADS is not None:
        return LOAD_THREADS
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)
