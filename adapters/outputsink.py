"""One output stream of a task, kept whole on disk with bounded memory.

A task may print gigabytes; the runner must not hold them. An
:class:`OutputSink` receives the pipe's bytes as they arrive and

* decodes them as UTF-8 (invalid bytes become U+FFFD: the file is text);
* redacts them with the run's one redaction pass (``redact``, normally
  :func:`uok.adapters.secrets.redact`) *before* they reach the disk: it
  cuts only at line ends, so a secret is never split between two calls,
  and holds back an unfinished private-key block (``-----BEGIN … PRIVATE
  KEY-----`` without its ``END`` yet) until it ends, up to
  :data:`HOLD_LIMIT` characters;
* writes them to its file, feeding the SHA-256 and the size with exactly
  the bytes written, and keeps the last :data:`TAIL_BYTES` for the event.
  The file is made when the first bytes are written: a stream the task
  never writes to (most tasks' stderr) leaves no file, and its record says
  0 bytes (issue 15: a new file's inode is most of a silent stream's cost).

What it holds at any time: one read chunk, at most :data:`HOLD_LIMIT`
characters waiting for a line end or a key block's end, and the tail.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

TAIL_BYTES = 4096
HOLD_LIMIT = 256 * 1024
"""Characters held while waiting for a line end (one endless line) or a key
block's end. Past it the held text is redacted and written as it is."""

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)

_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


class KeptOutput(NamedTuple):
    """What an output stream left: the file, its size and hash, its tail."""

    path: str | Path
    size: int
    sha256: str
    tail: str


class OutputSink:
    """Decode, redact, write, hash: one stream (stdout or stderr) of one turn."""

    def __init__(self, path: str | Path, redact: Callable[[str], str], *, tail_bytes: int = TAIL_BYTES):
        self.path = path  # as given (the executor's are strings: no Path built per task)
        self.redact = redact
        self.tail_bytes = tail_bytes
        # a bare descriptor: every write goes straight to the file (`uok logs --follow` reads it as it
        # grows), so a buffered file object would only cost its making (issue 15); made at the first
        # bytes to keep (a new file is most of a silent stream's cost: an inode), closed by close()
        self._fd = -1
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._hash = hashlib.sha256()
        self._size = 0
        self._tail = b""
        self._closed = False

    def write(self, chunk: bytes) -> None:
        self._held += self._decoder.decode(chunk)
        self._drain(final=False)

    def close(self) -> KeptOutput:
        """Write what is held (redacted), close the file, report it."""
        if not self._closed:
            self._held += self._decoder.decode(b"", final=True)
            self._drain(final=True)
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
            elif os.access(self.path, os.F_OK):  # nothing kept, yet a file is there: make it what was kept
                os.close(os.open(self.path, _CREATE, 0o666))
        tail = self._tail
        while tail and tail[0] & 0xC0 == 0x80:  # cut inside a character: start at the next one
            tail = tail[1:]
        return KeptOutput(self.path, self._size, self._hash.hexdigest(), tail.decode("utf-8", errors="replace"))

    # ------------------------------------------------------------------ internals

    def _drain(self, *, final: bool) -> None:
        held = self._held
        if final:
            cut = len(held)
        else:
            cut = held.rfind("\n") + 1
            begin = _last_open_key_block(held, cut)
            if begin is not None and len(held) <= HOLD_LIMIT:
                cut = begin  # a private key is being printed: wait for its END line
            elif cut == 0 and len(held) > HOLD_LIMIT:
                cut = len(held)  # one endless line: write it as it is
        if cut <= 0:
            return
        self._emit(held[:cut])
        self._held = held[cut:]

    def _emit(self, text: str) -> None:
        data = self.redact(text).encode("utf-8", errors="replace")
        if not data:
            return
        if self._fd < 0:
            self._fd = os.open(self.path, _CREATE, 0o666)
        view = memoryview(data)
        while view:  # a regular file takes it all at once; a short write goes on where it stopped
            view = view[os.write(self._fd, view) :]
        self._hash.update(data)
        self._size += len(data)
        self._tail = (self._tail + data[-self.tail_bytes :])[-self.tail_bytes :]


def _last_open_key_block(text: str, upto: int) -> int | None:
    """Start of the last private-key block in ``text[:upto]`` that has no END after it."""
    begin = None
    for m in _BEGIN.finditer(text, 0, upto):
        begin = m.start()
    if begin is None or _END.search(text, begin, upto):  # an END past the cut does not close it here
        return None
    return begin
