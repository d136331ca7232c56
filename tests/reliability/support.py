"""Checks shared by the torture tests: the log is whole, and it replays.

``assert_log_whole`` is the property every fault must preserve: the hash
chain verifies, positions are gapless from 1, and no (stream, version)
repeats. ``assert_replays`` re-drives a fresh kernel over every run's
recorded observations and requires the decisions recorded after each one to
be exactly what ``Kernel.handle`` returns again. Because the runner appends
``[observation, *decisions]`` in one transaction, a torn transaction (an
observation without all of its decisions, or decisions without their
observation) shows up here as a mismatch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from uok.adapters.cli.framework import build_parser
from uok.adapters.eventlog import EventLog
from uok.adapters.stores import open_event_store
from uok.domain import events as ev
from uok.domain.kernel import Kernel

from tests.conftest import ROOT


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every leaf sub-command of ``uok``, nested ones included (``"bus send"``)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            out[prefix] = parser
            return
        for name, sub in actions[0].choices.items():
            walk(f"{prefix} {name}".strip(), sub)

    walk("", build_parser(everything=True))
    return out


def read_log(db: Path) -> list[tuple[int, ev.Event]]:
    with open_event_store(db) as store:
        return list(EventLog(store).events())


def assert_log_whole(db: Path) -> int:
    """Chain verifies, positions 1..n gapless, (stream, version) unique; returns n."""
    with open_event_store(db) as store:
        count, _ = store.verify_chain()
        rows = store.query("SELECT position FROM events ORDER BY position")
        assert [r[0] for r in rows] == list(range(1, count + 1)), "positions are not gapless"
        dup = store.query("SELECT stream, version, count(*) FROM events GROUP BY stream, version HAVING count(*) > 1")
        assert not dup, f"duplicate (stream, version): {dup[:3]}"
        bad_versions = store.query(
            "SELECT stream FROM events GROUP BY stream HAVING max(version) != count(*) OR min(version) != 1"
        )
        assert not bad_versions, f"streams with version gaps: {bad_versions[:3]}"
    return count


def assert_replays(events: list[tuple[int, ev.Event]]) -> int:
    """Every observation of every run re-decides exactly what was recorded; returns how many."""
    entered = [i for i, (_, e) in enumerate(events) if isinstance(e, ev.KernelEntered)]
    checked = 0
    for i in entered:
        run_id = events[i][1].run_id
        kernel = Kernel()
        for _, e in events[:i]:
            kernel.apply(e)
        own = [(p, e) for p, e in events[i:] if e.run_id == run_id]
        j = 0
        while j < len(own):
            pos, obs = own[j]
            assert type(obs).OBSERVED, f"run {run_id}: decision {type(obs).__name__} at {pos} without an observation"
            k = j + 1
            while k < len(own) and not type(own[k][1]).OBSERVED:
                k += 1
            recorded = [e for _, e in own[j + 1 : k]]
            again = kernel.handle(obs)
            if again != recorded:
                first = next(
                    (i for i, (a, b) in enumerate(zip(again, recorded, strict=False)) if a != b),
                    min(len(again), len(recorded)),
                )
                raise AssertionError(
                    f"run {run_id}: observation {type(obs).__name__} at position {pos} re-decides "
                    f"{[type(e).__name__ for e in again]} but the log holds {[type(e).__name__ for e in recorded]}; "
                    f"first difference: {again[first : first + 1]!r} != {recorded[first : first + 1]!r}"[:2000]
                )
            positions = [p for p, _ in own[j:k]]
            assert positions == list(range(pos, pos + len(positions))), (
                f"run {run_id}: transaction at {pos} is not contiguous"
            )
            checked += 1
            j = k
    return checked


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``uok.adapters.cli.framework.main(argv)`` in-process: (exit code, stdout, stderr).

    An exception escaping ``main`` is NOT caught: it is the traceback a user
    would have seen, and fails the calling test."""
    from uok.adapters.cli.framework import main

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    stderr = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    stdout.flush()
    return code, stdout.buffer.getvalue().decode("utf-8", "replace"), stderr.getvalue()


def spawn_run(plan: Path, db: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet", *extra],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
