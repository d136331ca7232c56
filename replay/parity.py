"""The parity report (behaviour §7) from the runs projection plus a live probe.

Every kernel entry must be matched by one exit. The runs projection pairs
them; what it cannot know from the log is whether a run with no exit yet
is still running. The CLI probes each open run's pid (signal 0) on this
host, and this module classifies:

* ``matched``: exited ``ok`` or ``terminated`` (a clean, symmetrical pair);
* ``in-progress`` (fresh, not a mismatch): open and its pid is alive, or
  open, not probeable from here (another host) and younger than
  ``UNMATCHED_RUN_STALE_MS``;
* ``orphaned`` (a *fresh* mismatch): open and provably dead (pid gone, or
  detached by a fork), or not provably alive and older than 30 minutes
  (stale). The next kernel start closes it as ``recovered``;
* ``historical`` mismatches: runs that ended ``error`` (their errors are
  the report's critical mismatches) and runs closed as ``recovered``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import msgspec

UNMATCHED_RUN_STALE_MS = 30 * 60 * 1000
LEGACY_FALLBACK = "legacy-fallback"


class ParityRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    classification: str  # matched | in-progress | orphaned | historical
    status: str
    path: str
    plan_id: str = ""
    pid: int = 0
    host: str = ""
    entered_at: datetime | None = None
    exited_at: datetime | None = None
    detail: str = ""


class ParityReport(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    source_path: str
    total_events: int  # entries + exits (KernelExited and RunRecovered)
    runs: int
    paths: dict[str, int]  # runs by parity path label
    statuses: dict[str, int]  # runs by status ("open" = no exit yet)
    critical_mismatches: list[str]
    fallback_invocations: int
    matched: int
    in_progress: list[ParityRun]
    fresh_mismatches: list[ParityRun]
    historical_mismatches: list[ParityRun]
    duplicate_exits: list[str] = []  # runs with more than one exit record (must never happen)


def build_report(
    runs: dict[str, Any], probes: dict[str, bool | None], *, now: datetime, source_path: str
) -> ParityReport:
    """``runs``: the runs projection's state; ``probes``: run id -> pid alive
    (``None`` when it cannot be probed from here)."""
    stale = timedelta(milliseconds=UNMATCHED_RUN_STALE_MS)
    paths: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    in_progress, fresh, historical, critical, dups = [], [], [], [], []
    matched = total = 0
    for rid, r in runs.items():
        if r.entered_at is None:
            continue  # an exit whose entry is not in this log (cannot happen in a whole log)
        paths[r.path or "unknown"] += 1
        statuses[r.status or "unknown"] += 1
        total += 1 + r.exits
        if r.exits > 1:
            dups.append(rid)
        base = {
            "run_id": rid,
            "status": r.status,
            "path": r.path,
            "plan_id": r.plan_id,
            "pid": r.pid,
            "host": r.host,
            "entered_at": r.entered_at,
            "exited_at": r.exited_at,
        }
        if r.status in ("ok", "failed", "terminated"):  # failed: exited cleanly, units did not complete
            matched += 1
        elif r.status == "error":
            critical.append(r.error or "parity event reported error")
            historical.append(ParityRun(classification="historical", detail=r.error or "exited with error", **base))
        elif r.status == "recovered":
            historical.append(ParityRun(classification="historical", detail=r.error or "recovered", **base))
        else:
            alive = probes.get(rid)
            age = now - r.entered_at
            old = age > stale
            if r.detached:
                fresh.append(ParityRun(classification="orphaned", detail="detached by a fork", **base))
            elif alive is True:
                in_progress.append(ParityRun(classification="in-progress", detail=f"pid {r.pid} alive", **base))
            elif alive is False:
                fresh.append(ParityRun(classification="orphaned", detail=f"pid {r.pid} not running", **base))
            elif old:
                fresh.append(
                    ParityRun(
                        classification="orphaned",
                        detail=f"stale: open {_minutes(age)} min, liveness unknown on {r.host or 'its host'}",
                        **base,
                    )
                )
            else:
                in_progress.append(
                    ParityRun(
                        classification="in-progress",
                        detail=f"open {_minutes(age)} min, not probeable from here",
                        **base,
                    )
                )
    return ParityReport(
        generated_at=now,
        source_path=source_path,
        total_events=total,
        runs=sum(statuses.values()),
        paths=dict(sorted(paths.items())),
        statuses=dict(sorted(statuses.items())),
        critical_mismatches=critical,
        fallback_invocations=paths.get(LEGACY_FALLBACK, 0),
        matched=matched,
        in_progress=in_progress,
        fresh_mismatches=fresh,
        historical_mismatches=historical,
        duplicate_exits=dups,
    )


def _minutes(age: timedelta) -> int:
    return max(0, int(age.total_seconds() // 60))
