"""Asking the operating system whether a recorded process still lives.

Signal 0 reaches no process, it only says whether the pid exists (behaviour §7).
A pid recorded on another host proves nothing here, so such runs are
probed as unknown (None).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any


def pid_alive(pid: int) -> bool:
    """Signal-0 probe (behaviour §7): does a process with this pid exist?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe_open_runs(runs: Mapping[str, Any]) -> dict[str, bool | None]:
    """run id -> alive (True/False), or None for a pid on another host, for
    every run of the ``runs`` read model still open."""
    here = socket.gethostname()
    out: dict[str, bool | None] = {}
    for rid, r in runs.items():
        if r.status != "open":
            continue
        if r.pid <= 0:
            out[rid] = False
        elif r.host and r.host != here:
            out[rid] = None  # a pid on another machine proves nothing here
        else:
            out[rid] = pid_alive(r.pid)
    return out
