"""The log's last committed position and hash, kept outside SQLite.

Why: the newest commits of a SQLite log in WAL mode live only in its
``-wal`` until a checkpoint copies them into the file. A ``-wal`` truncated
(a careless copy, a full disk) or with a damaged frame loses those commits
*and everything after them* without a trace: SQLite stops reading at the
first bad frame, and the hash chain of what remains is still whole. Only a
record kept elsewhere can tell that commits are missing.

So every append, right after its ``COMMIT``, writes ``(position, hash)`` of
the log's new head into ``<log>-head`` (48 bytes, rewritten in place; not
fsynced: after a power loss it can only be *older* than the log, which
hides a loss but never invents one). ``uok verify`` compares: an anchor
past the log's head, or naming a position whose hash differs, is an
integrity failure (exit 3) naming the positions.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

__all__ = ["MAGIC", "HeadAnchor", "anchor_path", "check"]

MAGIC = b"uokhead1"
_FORMAT = struct.Struct(">8sQ32s")  # magic, position, hash


def anchor_path(db: Path) -> Path:
    return Path(f"{db}-head")


class HeadAnchor:
    """Writes the anchor of one log (the fd opened on the first write)."""

    def __init__(self, db: Path):
        self.path = anchor_path(db)
        self._fd: int | None = None
        self._broken = False

    def write(self, position: int, hash_: bytes) -> None:
        """Best effort: an anchor that cannot be written (read-only storage,
        a full disk) only means verify has less to compare against."""
        if self._broken:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.pwrite(self._fd, _FORMAT.pack(MAGIC, position, hash_), 0)
        except OSError:
            self._broken = True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def read(db: Path) -> tuple[int, bytes] | None:
    """The recorded (position, hash); None if there is no anchor (a log
    written before anchors existed, or copied without it) or it is not one."""
    try:
        data = anchor_path(db).read_bytes()
    except OSError:
        return None
    if len(data) != _FORMAT.size:
        return None
    magic, position, hash_ = _FORMAT.unpack(data)
    return (position, hash_) if magic == MAGIC else None


def check(db: Path, head: int, hash_at) -> str | None:
    """What is wrong with the log against its anchor, or None.

    ``head``: the log's last position; ``hash_at(p)``: the stored hash at p."""
    anchored = read(db)
    if anchored is None:
        return None
    position, recorded = anchored
    where = anchor_path(db).name
    if position > head:
        first = head + 1
        lost = f"position {first}" if first == position else f"positions {first}..{position}"
        return (
            f"committed events are missing: {where} records position {position} as committed, but the log ends "
            f"at {head}; {lost} lost (a truncated or damaged -wal?)"
        )
    if position and hash_at(position) != recorded:
        return f"the event at position {position} is not the one committed there ({where} records another hash)"
    return None


def forget(db: Path) -> None:
    """A new log at this path: an anchor left by an earlier one is not its."""
    with contextlib.suppress(FileNotFoundError):
        anchor_path(db).unlink()
