"""The kernel's durable snapshot equals the fold from zero (property tests),
and a run started from it decides exactly as one folded from zero.

The logs: a generated kernel log (many plans, gates, priced usage,
failures, crashes and recoveries; bench/kernel_log.py) and the committed
fixture logs. For any cut points the snapshot taken at P, restored and
folded forward to the end, equals the kernel folded from zero, also when
it is taken in steps (P, then Q, writing only the parts that changed) and
whichever plans were looked up in between.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uok.adapters.eventlog import EventLog
from uok.adapters.kernel_checkpoint import NAME, KernelCheckpoint
from uok.adapters.log_store import open_log_store, projection_store
from uok.adapters.runner import fold_log
from uok.domain.kernel import Kernel, KernelState
from uok.domain.kernel import snapshot as ksnap
from uok.domain.log import codec
from uok.domain.policies.costs import CostTable

from bench.kernel_log import generate
from tests.tt_support import FIXTURE_LOGS, LOGS

_TABLE = CostTable()


def comparable(state: KernelState) -> KernelState:
    """The state with every plan part decoded and the cost table (a plain
    object, compared by identity) set alike: a kernel that drives no run
    holds the bundled table."""
    ksnap.materialize(state)
    return msgspec.structs.replace(state, cost_table=_TABLE)


def folded(events: list, upto: int | None = None, kernel: Kernel | None = None, start: int = 0) -> Kernel:
    k = kernel or Kernel()
    for e in events[start:upto]:
        k.apply(e)
    return k


def snapshot_parts(state: KernelState, stored: dict[str, tuple[bytes, bytes]]) -> dict[str, tuple[bytes, bytes]]:
    """``stored`` with the parts of ``state`` that changed written over it."""
    changed, count = ksnap.changed_parts(state, {k: d for k, (d, _) in stored.items()})
    merged = {**stored, **changed}
    assert count == len(merged)
    return merged


def restored(parts: dict[str, tuple[bytes, bytes]]) -> Kernel:
    return Kernel(ksnap.restore({k: data for k, (_d, data) in parts.items()}))


@pytest.fixture(scope="module")
def generated_events(tmp_path_factory) -> list:
    path = tmp_path_factory.mktemp("ksnap") / "gen.db"
    generate(path, 6_000, seed=11, units_per_plan=12)
    with open_log_store(path) as store:
        only = Kernel.folded_topics()
        return [e for _, e in EventLog(store).events(only=only)]


def fixture_events(name: str) -> list:
    out = []
    for line in (LOGS / f"{name}.ndjson").read_bytes().splitlines():
        row = msgspec.json.decode(line)
        out.append(codec.decode(row["topic"], row["payload"].encode()))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), second=st.floats(0, 1), looked_up=st.integers(0, 10))
def test_a_snapshot_restored_and_folded_forward_equals_the_fold_from_zero(generated_events, cut, second, looked_up):
    events = generated_events
    n = len(events)
    p = int(cut * n)
    q = p + int(second * (n - p))
    whole = comparable(folded(events).state)
    # one snapshot at P
    parts = snapshot_parts(folded(events, p).state, {})
    k = restored(parts)
    assert comparable(folded(events, kernel=k, start=p).state) == whole
    # a snapshot at P, restored, a few plans looked up, folded to Q, snapshot again (only what changed)
    k = restored(parts)
    for plan_id in sorted({getattr(e, "plan_id", "") for e in events[:p]} - {""})[:looked_up]:
        k.state.plans.get(plan_id)
    folded(events, q, kernel=k, start=p)
    parts_q = snapshot_parts(k.state, parts)
    k = restored(parts_q)
    assert comparable(folded(events, kernel=k, start=q).state) == whole


@pytest.mark.parametrize("name", FIXTURE_LOGS)
def test_fixture_logs_snapshot_at_every_position(name):
    events = fixture_events(name)
    whole = comparable(folded(events).state)
    for p in range(len(events) + 1):
        k = restored(snapshot_parts(folded(events, p).state, {}))
        assert comparable(folded(events, kernel=k, start=p).state) == whole, p


def test_a_kernel_driving_a_run_is_never_snapshot(generated_events):
    k = folded(generated_events, 100)
    k.state.run_id = "r1"
    with pytest.raises(ValueError, match="driven run"):
        ksnap.changed_parts(k.state, {})


def test_an_untouched_plan_part_is_neither_decoded_nor_rewritten(generated_events):
    events = generated_events
    parts = snapshot_parts(folded(events).state, {})
    k = restored(parts)
    plans = [key for key in parts if key.startswith(ksnap.PLAN_PREFIX)]
    assert len(plans) > 3
    one = plans[0][len(ksnap.PLAN_PREFIX) :]
    assert k.state.plans.get(one) is not None
    assert dict.__len__(k.state.plans) == 1  # only the plan looked up was decoded
    changed, count = ksnap.changed_parts(k.state, {key: d for key, (d, _) in parts.items()})
    assert changed == {} and count == len(parts)


# ---------------------------------------------------------------- on a store


def test_checkpoint_restores_from_the_store_and_reads_only_what_is_new(logs):
    target = logs.fixture("recovery")
    with logs.open(target) as store:
        log = EventLog(store)
        reference = Kernel()
        fold_log(log, reference)
        cp = KernelCheckpoint(log, projection_store(store), save_after=1)
        kernel, head = cp.restore()
        assert head == store.head()[0]
        assert comparable(kernel.state) == comparable(reference.state)
        assert cp.save(kernel, head)
        assert projection_store(store).heads()[NAME].position == head
        again = KernelCheckpoint(log, projection_store(store))
        reads: list[int] = []
        real = log.events

        def counting(after=0, **kw):
            reads.append(after)
            return real(after, **kw)

        log.events = counting  # type: ignore[method-assign]
        kernel2, _ = again.restore()
        assert reads == [head]  # nothing before the snapshot is read
        assert comparable(kernel2.state) == comparable(reference.state)
        assert not again.save(kernel2, head)  # nothing new: nothing written


def test_a_snapshot_of_another_log_is_ignored_and_the_log_folded_from_zero(logs):
    """The recorded hash at P must be the log's own: a snapshot written for
    another log (a file replaced at the same path, a log rewritten before P)
    is never folded on."""
    from uok.projections.port import ProjectionWrite

    target = logs.fixture("failures")
    with logs.open(target) as store:
        log = EventLog(store)
        reference = Kernel()
        fold_log(log, reference)
        repo = projection_store(store)
        bogus = Kernel()  # an empty kernel claiming to be the fold up to the head
        parts, count = ksnap.changed_parts(bogus.state, {})
        repo.reset(NAME, ksnap.VERSION, rebuilding=False)
        head = store.head()[0]
        repo.commit(
            [
                ProjectionWrite(
                    name=NAME,
                    version=ksnap.VERSION,
                    expected_position=0,
                    position=head,
                    hash=b"\x00" * 32,
                    rebuilding=False,
                    parts=parts,
                    part_count=count,
                )
            ]
        )
        kernel, _ = KernelCheckpoint(log, projection_store(store)).restore()
        assert comparable(kernel.state) == comparable(reference.state)


def test_a_damaged_snapshot_part_is_never_folded_on_and_the_next_save_replaces_it(logs):
    target = logs.fixture("recovery")
    with logs.open(target) as store:
        log = EventLog(store)
        reference = Kernel()
        fold_log(log, reference)
        cp = KernelCheckpoint(log, projection_store(store), save_after=1)
        kernel, head = cp.restore()
        assert cp.save(kernel, head)
        repo = projection_store(store)
        stored = repo.load_parts(NAME)
        key = next(k for k in stored if k.startswith(ksnap.PLAN_PREFIX))
        digest, data = stored[key]
        damaged = bytes([data[0] ^ 0xFF]) + data[1:]
        from uok.projections.port import ProjectionWrite

        repo.commit(
            [
                ProjectionWrite(
                    name=NAME,
                    version=ksnap.VERSION,
                    expected_position=head,
                    position=head,
                    hash=store.hash_at(head),
                    rebuilding=False,
                    parts={key: (digest, damaged)},
                    part_count=len(stored),
                )
            ]
        )
        again = KernelCheckpoint(log, projection_store(store))
        kernel2, _ = again.restore()
        assert again.position == 0  # not used
        assert comparable(kernel2.state) == comparable(reference.state)
        assert again.save(kernel2, head)  # replaced whole
        assert ksnap.intact(projection_store(store).load_parts(NAME))
        kernel3, _ = KernelCheckpoint(log, projection_store(store)).restore()
        assert comparable(kernel3.state) == comparable(reference.state)


def test_a_run_leaves_the_read_models_current_unless_they_were_far_behind(tmp_path, monkeypatch):
    from uok.adapters import kernel_checkpoint

    from uok import bootstrap

    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "p"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "t"\ncommand = ["true"]\n'
    )
    db = tmp_path / "ev.db"

    def lags() -> set[int]:
        with bootstrap.read_models(db) as rm:
            return {st.lag for st in rm.runner.status()}

    assert bootstrap.run_plan(plan, db=db).exit_code == 0
    assert lags() == {0}  # built and current: `uok status` folds nothing
    monkeypatch.setattr(kernel_checkpoint, "CATCH_UP_LIMIT", 2)
    assert bootstrap.run_plan(plan, db=db).exit_code == 0  # nothing left to do: it appends 4 events (lease incl.)
    assert lags() == {4}  # further behind than the limit: left where they were
