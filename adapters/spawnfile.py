"""The spawn file: how a running task asks for sub-agents (``UOK_SPAWN_FILE``).

One JSON object per line::

    {"id": "lint", "command": ["ruff", "check", "."]}
    {"id": "review", "command": ["python3", "review.py"], "model_mode": "deep",
     "permission_profile": "restricted", "timeout": 120, "retries": 0}

Keys: ``id`` and ``command`` (required), ``title``, ``shell``, ``timeout``,
``retries``, ``env``, ``writes``, ``work_mode``, ``model_mode``,
``permission_profile``. The file is read once the task has exited. A line
that is not valid JSON or has a wrong key or type still yields a request,
with ``error`` set, so the kernel records the refusal
(``PhaseResult action="spawn-rejected"``) rather than dropping it silently.
At most :data:`MAX_LINES` lines are read.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from uok.domain.events import SpawnRequest
from uok.domain.plan import UnitNode
from uok.domain.policies.modes import MODE_KEYS

MAX_LINES = 256
_DECODER = msgspec.json.Decoder(SpawnRequest)


def read_spawns(path: str | Path) -> tuple[SpawnRequest, ...]:
    if not os.access(path, os.F_OK):  # most tasks ask for none: one cheap system call, no exception
        return ()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ()
    out = []
    for n, line in enumerate(data.splitlines()[:MAX_LINES], 1):
        if not line.strip():
            continue
        try:
            out.append(_DECODER.decode(line))
        except msgspec.DecodeError as exc:
            ident = ""
            try:
                raw = msgspec.json.decode(line)
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    ident = raw["id"]
            except msgspec.DecodeError:
                pass
            out.append(SpawnRequest(id=ident, error=f"spawn file line {n}: {exc}"))
    return tuple(out)


def mode_env(node: UnitNode) -> dict[str, str]:
    """``UOK_WORK_MODE`` etc. for the modes the unit's metadata sets."""
    return {
        f"UOK_{key.upper()}": str(node.metadata[key]) for key in MODE_KEYS if isinstance(node.metadata.get(key), str)
    }
