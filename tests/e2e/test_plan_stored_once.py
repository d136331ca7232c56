"""Plans stored once per content hash (issue 11, item 6).

A run of an unchanged plan records only references (hashes) to the events
holding its text and graph; a changed plan stores its new content. The
runs that reference their plan still replay, time travel, fork and report.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from uok.adapters.eventlog import EventLog
from uok.adapters.stores import open_event_store
from uok.domain import events as ev
from uok.domain.plan.content import graph_sha256

from tests.conftest import uok

TASKS = 12
TITLE = 4_000  # bytes of title per task: a plan of ~50 KB, held in its text and in its graph


def _plan(path: Path, salt: str = "") -> Path:
    body = '[plan]\nid = "big"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for i in range(TASKS):
        title = (f"task {i} {salt} " + "lorem ipsum " * TITLE)[:TITLE]
        body += f'[[milestones.slices.tasks]]\nid = "t{i}"\ntitle = "{title}"\ncommand = ["true"]\n'
    path.write_text(body)
    return path


def _rows(db: Path) -> list[tuple[int, str, bytes]]:
    store = open_event_store(db)
    try:
        return [(r.position, r.topic, bytes(r.payload)) for r in store.read(0)]
    finally:
        store.close()


def _bytes_by_run(db: Path) -> dict[str, int]:
    """Payload bytes each run wrote (its own events), in the order runs entered."""
    out: dict[str, int] = {}
    for _pos, _topic, payload in _rows(db):
        run = orjson.loads(payload).get("run_id", "")
        out[run] = out.get(run, 0) + len(payload)
    out.pop("", None)
    return out


def _of(db: Path, cls: type) -> list[tuple[int, ev.Event]]:
    store = open_event_store(db)
    try:
        return [(p, e) for p, e in EventLog(store).events() if isinstance(e, cls)]
    finally:
        store.close()


def _run(plan: Path, db: Path) -> str:
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    return _of(db, ev.KernelEntered)[-1][1].run_id


def test_an_unchanged_plan_is_stored_once_and_its_references_replay_fork_and_report(tmp_path: Path):
    plan = _plan(tmp_path / "plan.toml")
    size = plan.stat().st_size
    db = tmp_path / "events.db"
    runs = [_run(plan, db) for _ in range(4)]
    by_run = _bytes_by_run(db)
    first, later = by_run[runs[0]], [by_run[r] for r in runs[1:]]
    # the first run holds the text and the graph (each about the plan's size); each later one a few KB
    assert first > 2 * size, (first, size)
    assert max(later) < size / 10, (later, size)

    entered = {e.run_id: e for _p, e in _of(db, ev.KernelEntered)}
    compiled = {e.run_id: (p, e) for p, e in _of(db, ev.PlanCompiled)}
    assert not entered[runs[0]].plan_by_ref and entered[runs[0]].plan_source == plan.read_text()
    assert compiled[runs[0]][1].graph is not None
    for run in runs[1:]:
        e, (_p, c) = entered[run], compiled[run]
        assert e.plan_by_ref and e.plan_source == "" and e.plan_sha256 == entered[runs[0]].plan_sha256
        assert c.graph is None and c.graph_sha256 == compiled[runs[0]][1].graph_sha256 and c.plan_id == "big"
    assert compiled[runs[0]][1].graph_sha256 == graph_sha256(compiled[runs[0]][1].graph)

    # replay: every run (a reference is resolved from the event holding it)
    r = uok("replay", "--all", "--db", str(db))
    assert r.returncode == 0, r.stdout + r.stderr

    # time travel to just after the second run's PlanCompiled
    at = compiled[runs[1]][0]
    r = uok("state", "--at", str(at), "--run", runs[1], "--json", "--db", str(db))
    assert r.returncode == 0, r.stderr
    state = orjson.loads(r.stdout)
    assert state["plans"]["big"]["by_state"] == {"completed": TASKS + 1}, state["plans"]  # and the slice

    # the report of a referencing run shows its plan's units (its timeline resolves the graph)
    html = tmp_path / "run2.html"
    r = uok("report", runs[1], "--html", str(html), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert all(f"t{i}" in html.read_text() for i in range(TASKS))

    # a fork after the second run's entry holds what its references name, replays, and runs on
    exited = next(p for p, e in _of(db, ev.KernelExited) if e.run_id == runs[1])
    fork = tmp_path / "fork.db"
    r = uok("fork", runs[1], "--at", str(exited), "--db", str(db), "--out", str(fork))
    assert r.returncode == 0, r.stderr
    r = uok("replay", "--all", "--db", str(fork))
    assert r.returncode == 0, r.stdout + r.stderr
    forked_run = _run(plan, fork)
    assert next(e for e in _of(fork, ev.KernelEntered) if e[1].run_id == forked_run)[1].plan_by_ref
    assert uok("replay", "--all", "--db", str(fork)).returncode == 0

    # a changed plan stores its new text and graph, once
    changed = _plan(plan, salt="v2")
    runs += [_run(changed, db), _run(changed, db)]
    entered = {e.run_id: e for _p, e in _of(db, ev.KernelEntered)}
    compiled = {e.run_id: (p, e) for p, e in _of(db, ev.PlanCompiled)}
    assert not entered[runs[4]].plan_by_ref and "v2" in entered[runs[4]].plan_source
    assert compiled[runs[4]][1].graph is not None
    assert compiled[runs[4]][1].graph_sha256 != compiled[runs[0]][1].graph_sha256
    assert entered[runs[5]].plan_by_ref and compiled[runs[5]][1].graph is None
    assert uok("replay", "--all", "--db", str(db)).returncode == 0
    r = uok("verify", "--db", str(db))
    assert r.returncode == 0, r.stdout + r.stderr
    # the SQL copy reads the plan id of held and referencing events alike
    r = uok("sql", "SELECT plan_id, count(*) AS n FROM ev_plan_compiled GROUP BY plan_id", "--json", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert [orjson.loads(line) for line in r.stdout.splitlines() if line.strip()] == [{"plan_id": "big", "n": 6}]
