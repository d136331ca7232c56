"""Trace and span ids derived from the log, so that a trace is reproducible.

A run's trace id and every span id are hashes of what the log records
(the run id, a turn id, a gate id and attempt), never random: exporting the
same run twice gives the same ids, the spans ``uok run --otlp-endpoint``
streams live are the spans ``uok trace`` exports later, and a task's
``TRACEPARENT`` (its execution span, see :func:`traceparent`) is known
before its process starts, so an agent's own spans join the run's trace.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()


def trace_id(run_id: str) -> int:
    """The 128-bit trace id of a run (never 0, which W3C reserves)."""
    return int.from_bytes(_digest("uok-trace", run_id)[:16], "big") or 1


def span_id(run_id: str, *key: str) -> int:
    """The 64-bit id of one span of a run; ``key`` names it: ``("run",)``,
    ``("turn", turn_id)``, ``("execution", turn_id)``, ``("gate", turn_id,
    gate_id, attempt)``, ``("phase", turn_id, index)``."""
    return int.from_bytes(_digest("uok-span", run_id, *key)[:8], "big") or 1


def traceparent(run_id: str, turn_id: str) -> str:
    """W3C trace context for a task: the run's trace, its execution span as
    the parent, sampled."""
    return f"00-{trace_id(run_id):032x}-{span_id(run_id, 'execution', turn_id):016x}-01"
