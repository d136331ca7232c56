"""A sub-agent spawn request: what a running unit asks the kernel to start.

A task appends one JSON object per line to the file named by
``UOK_SPAWN_FILE``::

    {"id": "lint", "command": ["ruff", "check", "."], "model_mode": "fast"}

The executor parses the file after the task exits and the requests ride on
the ``ExecutionFinished`` observation; the kernel decides what to do with
them (``uok.domain.subagents``). A line that does not parse still becomes a
request, carrying ``error``, so the kernel records *why* it was refused
instead of the spawn vanishing silently.

This module holds only the Struct (no event imports), so ``uok.domain.events``
can use it without an import cycle.
"""

from __future__ import annotations

import msgspec


class SpawnRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str = ""
    command: tuple[str, ...] = ()
    title: str = ""
    shell: bool = False
    timeout: float | None = None
    retries: int | None = None
    env: dict[str, str] = {}
    writes: tuple[str, ...] = ()
    work_mode: str | None = None
    model_mode: str | None = None
    permission_profile: str | None = None
    error: str = ""  # set by the executor for a line it could not parse
