"""Parallel intent (issue 19, behaviour §12), the pure part: when two
patterns overlap, and the kernel never dispatching units whose intents
conflict, saying why one waits (a real run: tests/e2e/test_intents.py)."""

from __future__ import annotations

import pytest
from uok.domain import events as ev
from uok.domain.eval.suite import to_toml
from uok.domain.kernel import Kernel
from uok.domain.plan.intents import overlaps

from tests.helpers import StepClock
from tests.unit.test_kernel import enter, finish, started


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("src/**", "src/app.py", True),
        ("src/**", "src", True),
        ("src", "src/app.py", True),  # a plain path names a file or a directory
        ("docs", "src/**", False),
        ("src/*.py", "src/app.py", True),
        ("src/*.py", "src/sub/app.py", False),  # * stays within a segment
        ("src/**/*.py", "src/a/b.py", True),
        ("src/**/*.py", "src/b.py", True),  # **/ matches zero segments too
        ("src", "src/**/x.py", True),
        ("src/a", "src/b", False),
        ("src/app.py", "src/app.py.bak", False),
        ("a/*", "b/*", False),
        ("src/*.py", "src/*.md", True),  # two globs: conservative, by their literal prefix
        ("**", "anything/at/all", True),
        ("src/[ab].py", "src/a.py", True),
        ("src/[ab].py", "src/c.py", False),
    ],
)
def test_overlap(a, b, overlap):
    assert overlaps(a, b) is overlap
    assert overlaps(b, a) is overlap


CMD = ["true"]


def plan_toml(tasks: list[dict]) -> str:
    return to_toml({"plan": {"id": "t"}, "milestones": [{"id": "M1", "slices": [{"id": "S1", "tasks": tasks}]}]})


PLAN = plan_toml(
    [
        {"id": "all", "command": CMD, "intents": {"write": ["src/**"]}},
        {"id": "app", "command": CMD, "writes": ["src/app.py"], "depends_on": []},
        {"id": "docs", "command": CMD, "intents": {"read": ["docs/"]}, "depends_on": []},
        {"id": "readsrc", "command": CMD, "intents": {"read": ["src/lib.py"]}, "depends_on": []},
    ]
)


def test_overlapping_writers_and_a_reader_of_a_written_path_wait_and_say_why():
    clock, k = StepClock(), Kernel()
    out = enter(k, PLAN, clock, workers=4)
    assert sorted(t.unit_id for t in started(out)) == ["all", "docs"]  # a reader of docs/ beside the src/ writer
    waiting = {w.unit_id: w for w in out if isinstance(w, ev.UnitWaiting)}
    assert set(waiting) == {"app", "readsrc"}
    assert waiting["app"].waits_for == "all"
    assert waiting["app"].reason == "write intent 'src/app.py' overlaps write intent 'src/**' of all"
    assert waiting["readsrc"].reason == "read intent 'src/lib.py' overlaps write intent 'src/**' of all"
    [all_turn] = [t for t in started(out) if t.unit_id == "all"]
    out = finish(k, all_turn, clock)
    assert sorted(t.unit_id for t in started(out)) == ["app", "readsrc"]  # a reader beside a writer of another file
    assert not [w for w in out if isinstance(w, ev.UnitWaiting)]  # said once


def test_a_plan_without_intents_dispatches_as_before():
    clock, k = StepClock(), Kernel()
    plain = plan_toml([{"id": x, "command": CMD, "depends_on": []} for x in ("a", "b", "c")])
    out = enter(k, plain, clock, workers=3)
    assert len(started(out)) == 3 and not k.state.intents.active


@pytest.mark.parametrize(
    ("pattern", "path", "covered"),
    [
        ("src/app.py", "src/app.py", True),
        ("src", "src/app.py", True),
        ("src/app.py", "src", False),  # a declared file does not cover its directory
        ("build/**", "build/out/x.o", True),
        ("build/**", "notes.txt", False),
        ("*.md", "README.md", True),
        ("*.md", "docs/a.md", False),
    ],
)
def test_declared_paths_cover(pattern, path, covered):
    from uok.domain.plan.intents import covers

    assert covers(pattern, path) is covered


def _gates_requested(k: Kernel, clock) -> dict[str, list[str]]:
    """Run every unit to its gates; which gates each was asked to pass."""
    out: dict[str, list[str]] = {}
    pending = started(enter(k, PROFILES, clock, workers=2, flags=k.flags_for_test))
    for turn in pending:
        decided = finish(k, turn, clock)
        out[turn.unit_id] = [d.gate_id for d in decided if isinstance(d, ev.GateRequested)]
    return out


PROFILES = plan_toml(
    [
        {"id": "s", "command": CMD, "metadata": {"permission_profile": "strict"}, "depends_on": []},
        {"id": "d", "command": CMD, "depends_on": []},
    ]
)


def test_only_units_under_an_enforced_profile_get_the_permissions_gate():
    clock = StepClock()
    for flags, expected in (
        ({"permission_gate": "permissions", "gates": {"permissions": "policy"}}, {"s": ["permissions"], "d": []}),
        (
            {"permission_gate": "permissions", "gates": {"permissions": "policy"}, "permission_profile": "read-only"},
            {"s": ["permissions"], "d": ["permissions"]},
        ),
        ({}, {"s": [], "d": []}),  # a run that did not record the gate (every run before it) asks for none
    ):
        k = Kernel()
        k.flags_for_test = flags  # type: ignore[attr-defined]
        assert _gates_requested(k, clock) == expected


def test_run_time_intents_are_granted_or_refused_and_hold_dispatch():
    from uok.domain.events import SteeringReceived

    clock, k = StepClock(), Kernel()
    plan = plan_toml(
        [
            {"id": "a", "command": CMD, "depends_on": []},
            {"id": "b", "command": CMD, "depends_on": []},
            {"id": "c", "command": CMD, "writes": ["src/x.py"], "depends_on": ["b"]},
        ]
    )
    turns = {t.unit_id: t for t in started(enter(k, plan, clock, workers=3))}
    assert set(turns) == {"a", "b"} and not k.state.intents.active

    def ask(turn, argument, mid):
        return k.handle(
            SteeringReceived(
                run_id="r1", at=clock(), message_id=mid, command="intent", argument=f"{turn.turn_id} {argument}"
            )
        )

    out = ask(turns["a"], "write=src/**", "m1")
    [granted] = [d for d in out if isinstance(d, ev.IntentDeclared)]
    assert granted.writes == ("src/**",) and granted.unit_id == "a"
    out = ask(turns["b"], "write=src/app.py read=docs/", "m2")
    [refused] = [d for d in out if isinstance(d, ev.IntentRefused)]
    assert refused.reason == "write intent 'src/app.py' overlaps write intent 'src/**' of a"
    assert "refused: write intent" in next(d for d in out if isinstance(d, ev.SteeringApplied)).outcome
    out = finish(k, turns["b"], clock)  # c is ready, but a holds src/** at run time
    assert started(out) == [] and [w.unit_id for w in out if isinstance(w, ev.UnitWaiting)] == ["c"]
    out = finish(k, turns["a"], clock)  # a's turn ended: its run-time intents with it
    assert [t.unit_id for t in started(out)] == ["c"]
    bad = ask(turns["a"], "write=/etc/passwd", "m3")
    assert next(d for d in bad if isinstance(d, ev.SteeringApplied)).outcome.startswith("refused:")
