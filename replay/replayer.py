"""Deterministic replay: re-drive today's kernel over a recorded run and
report the first place where it decides differently.

The shell appends every observation together with the decisions the kernel
took for it, in one transaction. So a run can be replayed without running
anything:

1. build a fresh :class:`uok.domain.kernel.Kernel` and fold (``apply``) every
   event before the run's ``KernelEntered``: the kernel's context, exactly
   as the shell's ``fold_log`` built it (events whose type the kernel does
   not fold are skipped without decoding; every row read is checked against
   the hash chain when the log verifies, as ``EventLog`` does by default);
2. from there on, events not authored by the run (other processes, the
   bus, a fork marker) are folded too;
3. for each observation of the run (``OBSERVED = True``) call
   ``kernel.handle(obs)`` and compare the decisions it returns, in order,
   with the decisions recorded after that observation (same run, up to the
   run's next observation).

The first difference is reported with its position, the expected
(recorded) and actual event types, a field-by-field diff and the unit,
turn and gate involved. A decision recorded but not produced is
``missing``; one produced but not recorded is ``extra``; a rule that raises
is ``error``. Replay stops at the first divergence: past it, the kernel's
state follows today's code, not the log, and every later comparison would
be noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

import msgspec
from uok.domain.errors import InputError
from uok.domain.events import Event, KernelEntered, KernelExited
from uok.domain.kernel import Kernel
from uok.domain.log import codec
from uok.replay.fielddiff import FieldDiff, builtins, diff

if TYPE_CHECKING:  # the log is an adapter; replay only uses its store port
    from uok.adapters.eventlog import EventLog

_PAGE = 5000


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # of the recorded decision that differs, or the slot an extra one would take
    kind: str  # changed | missing | extra | error
    observation_position: int
    observation_type: str
    expected_type: str | None = None
    actual_type: str | None = None
    fields: tuple[FieldDiff, ...] = ()
    unit_id: str = ""
    turn_id: str = ""
    gate_id: str = ""
    error: str = ""
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    diverged: bool
    events_replayed: int  # the run's events reproduced exactly (all of them, unless diverged)
    observations: int = 0
    decisions: int = 0
    events_folded: int = 0  # context folded: before the run, and other runs' events during it
    entered_position: int = 0
    last_position: int = 0
    status: str = "open"  # the run's recorded exit status
    divergence: Divergence | None = None


class RunNotFound(InputError, LookupError):
    pass


def entered_position(store: Any, run_id: str) -> int:
    """Position of the run's ``KernelEntered`` (the first event of its stream)."""
    for r in store.read(0, stream=f"run:{run_id}", limit=1):
        e = codec.decode(r.topic, r.payload)
        if isinstance(e, KernelEntered):
            return r.position
        break
    raise RunNotFound(f"no run {run_id!r} in this log")


def _records(log: Any, after: int, upto: int | None = None) -> Iterator[Any]:
    """Records in order. Through ``EventLog.records`` when the log has it,
    which recomputes the hash chain as it reads (a damaged or altered log
    raises ``ChainBroken`` instead of being replayed)."""
    records = getattr(log, "records", None)
    if records is not None:
        return records(after, upto=upto)
    return log.store.read(after, upto=upto)


def replay_run(log: EventLog, run_id: str, *, kernel_factory: Callable[[], Kernel] | None = None) -> ReplayReport:
    """Replay one run of ``log``; never executes anything, never writes."""
    store = log.store
    start = entered_position(store, run_id)
    k = (kernel_factory or Kernel)()
    folded = 0
    decode, apply = codec.decode, k.apply
    if start > 1:
        wanted = Kernel.folded_topics()
        for r in _records(log, 0, start - 1):
            if r.topic in wanted:  # the rest is read (and verified) but never decoded
                apply(decode(r.topic, r.payload))
                folded += 1

    observations = decisions = verified = 0
    group: _Group | None = None
    divergence: Divergence | None = None
    status, last = "open", start
    for r in _records(log, start - 1):
        e = decode(r.topic, r.payload)
        if e.run_id != run_id:
            if status != "open":
                break  # the run has exited: nothing of it follows
            apply(e)
            folded += 1
            continue
        last = r.position
        if type(e).OBSERVED:
            if group is not None:
                divergence = group.compare()
                verified += 1 + group.matched
                if divergence is not None:
                    break
            observations += 1
            group = _Group(r.position, e)
            try:
                group.actual = k.handle(e)
            except Exception as exc:  # a rule that raises is a divergence, not a crash of replay  # noqa: BLE001
                divergence = Divergence(
                    position=r.position,
                    kind="error",
                    observation_position=r.position,
                    observation_type=type(e).__name__,
                    error=f"{type(exc).__name__}: {exc}",
                    **_involved(e),
                )
                break
        else:
            decisions += 1
            if group is None:
                divergence = _unexpected(r.position, e)
                break
            group.recorded.append((r.position, e))
            if isinstance(e, KernelExited):
                status = e.status
    if divergence is None and group is not None:
        divergence = group.compare()
        verified += 1 + group.matched
    if divergence is not None and divergence.position > last:
        last = divergence.position
    return ReplayReport(
        run_id=run_id,
        diverged=divergence is not None,
        events_replayed=verified,
        observations=observations,
        decisions=decisions,
        events_folded=folded,
        entered_position=start,
        last_position=last,
        status=status,
        divergence=divergence,
    )


class _Group:
    """One observation, the decisions recorded after it and those replayed."""

    __slots__ = ("actual", "matched", "obs", "position", "recorded")

    def __init__(self, position: int, obs: Event):
        self.position, self.obs = position, obs
        self.recorded: list[tuple[int, Event]] = []
        self.actual: list[Event] = []
        self.matched = 0  # recorded decisions reproduced before the first difference

    def compare(self) -> Divergence | None:
        rec, act = self.recorded, self.actual
        self.matched = len(rec)
        for i in range(max(len(rec), len(act))):
            expected = rec[i][1] if i < len(rec) else None
            actual = act[i] if i < len(act) else None
            if expected is not None and actual is not None and _same(expected, actual):
                continue
            self.matched = min(i, len(rec))
            if expected is None:
                slot = (rec[-1][0] if rec else self.position) + 1 + (i - len(rec))
                kind, position = "extra", slot
            elif actual is None:
                kind, position = "missing", rec[i][0]
            else:
                kind, position = "changed", rec[i][0]
            fields: tuple[FieldDiff, ...] = ()
            if expected is not None and actual is not None:
                if type(expected) is type(actual):
                    fields = tuple(diff(expected, actual))
                else:
                    fields = (FieldDiff(path="type", expected=type(expected).__name__, actual=type(actual).__name__),)
            return Divergence(
                position=position,
                kind=kind,
                observation_position=self.position,
                observation_type=type(self.obs).__name__,
                expected_type=type(expected).__name__ if expected is not None else None,
                actual_type=type(actual).__name__ if actual is not None else None,
                fields=fields,
                expected=builtins(expected) if expected is not None else None,
                actual=builtins(actual) if actual is not None else None,
                **_involved(expected if expected is not None else actual, self.obs),
            )
        return None


def _same(a: Event, b: Event) -> bool:
    # Struct equality first; then the encoded bytes, for values that differ
    # only in container type (a tuple held in an ``Any`` field decodes as a list).
    return a == b or (type(a) is type(b) and codec.encode(a)[1] == codec.encode(b)[1])


class _Involved(TypedDict):
    unit_id: str
    turn_id: str
    gate_id: str


def _involved(*events: Event | None) -> _Involved:
    """The unit, turn and gate the events are about (the first that names each)."""

    def first(field: str) -> str:
        return next((str(v) for e in events if e is not None and (v := getattr(e, field, ""))), "")

    return _Involved(unit_id=first("unit_id"), turn_id=first("turn_id"), gate_id=first("gate_id"))


def _unexpected(position: int, e: Event) -> Divergence:
    return Divergence(
        position=position,
        kind="extra-recorded",
        observation_position=0,
        observation_type="",
        expected_type=type(e).__name__,
        error="a decision of the run recorded before any of its observations",
        expected=builtins(e),
        **_involved(e),
    )


def run_ids(log: EventLog) -> list[str]:
    """Every run that entered the log, in order."""
    out = []
    for r in log.store.read(0, topics=[f"KernelEntered/v{v}" for v in range(KernelEntered.VERSION + 1)]):
        out.append(codec.decode(r.topic, r.payload).run_id)
    return out
