"""Events and bytes per task (issue 15 item 6): a 50-task chain through
``uok.bootstrap`` (as ``uok run`` builds it) writes at most the measured
number of events and payload bytes per task, every payload compact (no
type tag, no field at its default; ``dense_turns``: no dispatch phase and no
outcome's finalize phase recorded), and ``uok verify`` passes on the log.

The figures are the ones docs/performance.md quotes ("Per task today");
``bench/events_per_task.py`` prints them by event type. If a change adds
an event or bytes per task on purpose, update both.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
from uok.domain.log import codec

from tests.conftest import uok
from uok import bootstrap

TASKS = 50

# Per task, measured on 2026-12-01 (see docs/performance.md): before, 14.36
# events and 4,343 bytes of payload per task in a 50-task chain; with compact
# payloads, the same events and 3,554 bytes; with dense_turns too, 12.32 and 3,230.
EVENTS_PER_TASK = 12.32
PAYLOAD_PER_TASK = 3_260  # measured 3,230; what varies is the digits of durations, pids and the temp path


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "peers"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "c0"\n\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "c0s{i}"\ncommand = ["true"]\n\n' for i in range(TASKS)),
        encoding="utf-8",
    )
    return plan


def test_a_chain_writes_the_measured_events_and_bytes_per_task(tmp_path: Path):
    db = tmp_path / "events.db"
    prepared = bootstrap.prepare_run(_plan(tmp_path), flags={"max_iterations": 10 * TASKS + 100})
    log = bootstrap.open_log(str(db), create=True, synchronous="FULL")
    runner = bootstrap.assemble_runner(log, prepared, workers=1)
    assert runner.run().exit_code == 0
    rows = list(log.store.read())
    log.store.close()

    topics = Counter(r.topic.partition("/v")[0] for r in rows)
    # per task: 5 unit transitions, a turn's start, 1 phase result (the
    # execution's: with dense_turns the dispatch and the outcome's finalize
    # phases are implied by TurnStarted and TurnFinished), its execution,
    # its end, the writer token taken and given back, its closeout
    per_task = {
        "UnitTransitioned": 5,
        "PhaseResult": 1,
        "TurnStarted": 1,
        "ExecutionFinished": 1,
        "TurnFinished": 1,
        "WriterTokenAcquired": 1,
        "WriterTokenReleased": 1,
        "TurnClosed": 1,
    }
    for topic, n in per_task.items():  # the slice's completion is a turn too, with no process
        assert topics[topic] == n * TASKS + (0 if topic == "ExecutionFinished" else n), topic
    assert len(rows) / TASKS <= EVENTS_PER_TASK
    payload = sum(len(r.payload) for r in rows)
    assert payload / TASKS <= PAYLOAD_PER_TASK, payload / TASKS

    for r in rows:  # every payload compact, and it decodes
        stored = msgspec.json.decode(r.payload)
        assert "type" not in stored, r.topic
        event = codec.decode(r.topic, r.payload)
        for f in msgspec.structs.fields(type(event)):
            if f.default is not msgspec.NODEFAULT and f.name in stored and f.default is getattr(event, f.name):
                raise AssertionError(f"{r.topic}: {f.name} holds its default and was written")

    done = uok("verify", "--db", str(db))
    assert done.returncode == 0, done.stderr
