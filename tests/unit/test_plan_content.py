"""Plan content addressing (issue 11, item 6): the v1 -> v2 upcasters, and
the kernel holding a plan's text and graph once and resolving references."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from uok.domain import events as ev
from uok.domain.kernel import Kernel, snapshot
from uok.domain.log import codec
from uok.domain.plan.content import PlanContentMissing, text_sha256

from tests.helpers import plan_toml

T = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = plan_toml(("S1", [{"id": "a", "command": ["true"]}]), plan_id="p")


def test_v1_payloads_upcast_holding_their_content():
    entered = {"type": "KernelEntered", "at": "2026-01-01T00:00:00Z", "run_id": "r", "pid": 1}
    entered |= {"plan_path": "p.toml", "plan_source": SOURCE, "workers": 1}
    e = codec.decode("KernelEntered/v1", msgspec.json.encode(entered))
    assert isinstance(e, ev.KernelEntered) and e.plan_source == SOURCE
    assert (e.plan_id, e.plan_sha256, e.plan_by_ref) == ("", "", False)
    graph = {"plan_id": "p", "title": "", "nodes": [], "order": [], "conflicts": []}
    compiled = {"type": "PlanCompiled", "at": "2026-01-01T00:00:00Z", "run_id": "r", "graph": graph}
    c = codec.decode("PlanCompiled/v1", msgspec.json.encode(compiled))
    assert isinstance(c, ev.PlanCompiled) and c.plan_id == "p" and c.graph is not None and c.graph_sha256 == ""


def _entered(run: str, *, by_ref: bool, source: str = SOURCE) -> ev.KernelEntered:
    return ev.KernelEntered(
        run_id=run,
        at=T,
        pid=1,
        plan_path="p.toml",
        plan_source="" if by_ref else source,
        plan_id="p",
        plan_sha256=text_sha256(source, {}, {}),
        plan_by_ref=by_ref,
        workers=1,
    )


def _compiled(k: Kernel, log: list[ev.Event], e: ev.KernelEntered) -> ev.PlanCompiled:
    """Enter a run on ``k`` (the log folded so far); its decisions join ``log``."""
    out = k.handle(e)
    log += [e, *out]
    return next(d for d in out if isinstance(d, ev.PlanCompiled))


def _folded(log: list[ev.Event]) -> Kernel:
    k = Kernel()
    for e in log:
        k.apply(e)
    return k


def test_a_second_run_references_text_and_graph_and_a_snapshot_keeps_them():
    log: list[ev.Event] = []
    first = _compiled(Kernel(), log, _entered("r1", by_ref=False))
    assert first.graph is not None and first.graph_sha256
    second = _compiled(_folded(log), log, _entered("r2", by_ref=True))
    assert second.graph is None and second.graph_sha256 == first.graph_sha256
    assert _folded(log).with_graph(second).graph == first.graph
    # a snapshot of the log's fold restores the content; a third run still references it
    parts, _ = snapshot.changed_parts(_folded(log).state, {})
    restored = snapshot.restore({key: data for key, (_d, data) in parts.items()})
    assert (
        snapshot.materialize(snapshot.restore({key: data for key, (_d, data) in parts.items()})).contents["p"].graph
        == first.graph
    )
    third = _compiled(Kernel(restored), log, _entered("r3", by_ref=True))
    assert third.graph is None and third.graph_sha256 == first.graph_sha256
    # a changed text is held again, and so is its new graph
    changed = SOURCE.replace('"true"', '"false"')
    fourth = _compiled(_folded(log), log, _entered("r4", by_ref=False, source=changed))
    assert fourth.graph is not None and fourth.graph_sha256 != first.graph_sha256


def test_a_reference_no_earlier_event_holds_is_an_integrity_failure():
    with pytest.raises(PlanContentMissing):
        Kernel().handle(_entered("r1", by_ref=True))
