"""The kernel's state as snapshot parts, restored lazily, plan by plan.

Why: a kernel is the fold of the WHOLE log (retry budgets, breakers, cost
windows and pause flags survive restarts), so a start that folds from zero
costs in proportion to the history. A snapshot taken at position P lets a
start fold only the events after P. On a long history most of the state
is the units and compiled graphs of plans that will never run again (on the
1M-event benchmark log: 1,421 graphs and 62,524 unit records, ~21 MB
encoded, seconds to decode), so the state is cut into

* ``core``: everything but the per-plan data (runs, breakers, failure
  memory, spend, steering, closeout …), and
* one part per plan (``plan:<id>``): its latest compiled graph, its units'
  records, the sub-agents spawned into it and what each of its units has
  spent (the cost ledger's ``by_unit``: ~29,000 entries on that log, a
  third of the core's decoding time when it was kept there),

and a restored state decodes a plan's part only when something looks that
plan up (:class:`PlanParts`). A part never looked up is never decoded and,
when the next snapshot is written, is kept as it was stored. Plan parts are
stored zlib-compressed (level 1: ~6x smaller on that log, so a start reads
~4 MB instead of ~22 MB; a part is decompressed only when decoded). Every
part's digest is of its stored bytes, so a restore can check them all
(:func:`intact`) without decompressing anything.

Only the fold of recorded events is snapshot, never a run a kernel drives:
a snapshot is taken from a kernel that has not entered a run (``run_id ==
""``) and restoring one yields such a kernel. The gate settings cached for
the driven run (``KernelState.flags``, ``cost_table``) are left at their
defaults; entering a run sets them from its ``KernelEntered``.

Bump :data:`VERSION` whenever the state's shape or a fold changes: a
stored snapshot of another version is ignored, the kernel is folded from
zero and snapshot anew.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

import msgspec
from uok.domain.kernel.state import KernelState
from uok.domain.plan import UnitGraph, UnitNode
from uok.domain.plan.content import PlanContent
from uok.domain.policies.cost_guard import UNIT_KEY_SEP, unit_key
from uok.domain.policies.costs import CostTable
from uok.domain.policies.lifecycle import UnitRecord

VERSION = 10  # 2: plan parts zlib-compressed, digests of the stored bytes; 3: agent turns' spend; 4: plan lease epochs, run hosts; 5: artifact gating state;
# 6: parallel intents; 7: agent turns' spend by model; 8: run-time intents; 9: plan content (text and graph by hash);
# 10: each unit's spend (CostLedger.by_unit) in its plan's part
CORE = "core"
PLAN_PREFIX = "plan:"

Parts = dict[str, tuple[bytes, bytes]]  # part key -> (digest, encoding)


class PlanPart(msgspec.Struct, kw_only=True, array_like=True):
    """Everything the kernel holds about one plan."""

    graph: UnitGraph | None = None
    units: dict[str, UnitRecord] = {}
    spawned: list[UnitNode] = []
    content: PlanContent | None = None  # its latest recorded text and graph (KernelState.contents)
    content_graph_is_graph: bool = False  # content.graph is ``graph`` (stored once, not twice)
    spent: dict[str, float] = {}  # unit id -> what it has spent (CostLedger.by_unit)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, CostTable):  # the driven run's table: never part of a snapshot
        return None
    raise NotImplementedError(f"cannot snapshot a {type(obj).__name__}")


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is CostTable:
        return CostTable()
    raise NotImplementedError(f"cannot restore a {typ.__name__}")


_ENC = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_CORE = msgspec.msgpack.Decoder(KernelState, dec_hook=_dec_hook)
_PLAN = msgspec.msgpack.Decoder(PlanPart)


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


# ---------------------------------------------------------------- lazy restore


class PlanParts:
    """The encoded plan parts a restored state has not decoded yet. Looking
    up anything of a plan (a unit, its graph, its children) decodes that
    plan's part into the three dicts first, so every fold and every rule
    sees exactly the state a fold from zero would hold."""

    def __init__(self, state: KernelState, pending: dict[str, bytes]):
        self.state, self.pending = state, pending

    def load(self, plan_id: str) -> None:
        data = self.pending.pop(plan_id, None)
        if data is None:
            return
        part = _PLAN.decode(zlib.decompress(data))
        st = self.state
        if part.graph is not None:
            dict.__setitem__(st.plans, plan_id, part.graph)
        for unit_id, rec in part.units.items():
            dict.__setitem__(st.units, (plan_id, unit_id), rec)
        if part.spawned:
            dict.__setitem__(st.subagents.spawned, plan_id, part.spawned)
        if part.content is not None:
            if part.content_graph_is_graph:
                part.content.graph = part.graph
            dict.__setitem__(st.contents, plan_id, part.content)
        if part.spent:
            by_unit = st.gates.costs.by_unit
            for unit_id, usd in part.spent.items():
                dict.__setitem__(by_unit, unit_key(plan_id, unit_id), usd)

    def load_all(self) -> None:
        for plan_id in list(self.pending):
            self.load(plan_id)


class _LazyDict(dict[Any, Any]):
    """A dict whose entries of a plan are decoded on the first look-up of
    that plan; whole-dict reads (iteration, values, len) decode every plan."""

    __slots__ = ("_parts",)
    _plan_of: Callable[[Any], str]

    def __init__(self, parts: PlanParts):
        super().__init__()
        self._parts = parts

    def _ready(self, key: Any) -> None:
        if self._parts.pending:
            self._parts.load(self._plan_of(key))

    def _all(self) -> None:
        if self._parts.pending:
            self._parts.load_all()

    def __getitem__(self, key: Any) -> Any:
        self._ready(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ready(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self._ready(key)
        dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._ready(key)
        return dict.__contains__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._ready(key)
        return dict.get(self, key, default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._ready(key)
        return dict.setdefault(self, key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._ready(key)
        return dict.pop(self, key, *default)

    def __iter__(self) -> Iterator[Any]:
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._all()
        return dict.__len__(self)

    def keys(self) -> dict_keys[Any, Any]:
        self._all()
        return dict.keys(self)

    def values(self) -> dict_values[Any, Any]:
        self._all()
        return dict.values(self)

    def items(self) -> dict_items[Any, Any]:
        self._all()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._all()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._all()
        if isinstance(other, _LazyDict):
            other._all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        self._all()
        return dict.__repr__(self)

    __hash__ = None


class _LazyUnits(_LazyDict):
    __slots__ = ()

    @staticmethod
    def _plan_of(key: tuple[str, str]) -> str:
        return key[0]


class _LazyByPlan(_LazyDict):
    __slots__ = ()

    @staticmethod
    def _plan_of(key: str) -> str:
        return key


class _LazyByUnitKey(_LazyDict):
    """Keyed by :func:`~uok.domain.policies.cost_guard.unit_key` (``plan \\x1f unit``)."""

    __slots__ = ()

    @staticmethod
    def _plan_of(key: str) -> str:
        return key.partition(UNIT_KEY_SEP)[0]


def intact(parts: Mapping[str, tuple[bytes, bytes]]) -> bool:
    """True if every part's stored bytes match its digest and the core is
    there: a damaged snapshot is never folded on (nor decoded mid-run)."""
    return CORE in parts and all(digest(data) == d for d, data in parts.values())


def restore(parts: Mapping[str, bytes]) -> KernelState:
    """The state a snapshot's parts describe; plan parts decoded on demand."""
    state = _CORE.decode(parts[CORE])
    pending = {k[len(PLAN_PREFIX) :]: v for k, v in parts.items() if k.startswith(PLAN_PREFIX)}
    lazy = PlanParts(state, pending)
    state.units = _LazyUnits(lazy)
    state.plans = _LazyByPlan(lazy)
    state.contents = _LazyByPlan(lazy)
    state.subagents.spawned = _LazyByPlan(lazy)
    state.gates.costs.by_unit = _LazyByUnitKey(lazy)  # the core holds none: they are in the plan parts
    return state


def materialize(state: KernelState) -> KernelState:
    """Decode every plan part still pending (for comparisons and tests)."""
    units = state.units
    if isinstance(units, _LazyDict):
        units._all()
    return state


# ---------------------------------------------------------------- taking one


def _pending(state: KernelState) -> dict[str, bytes]:
    units = state.units
    return units._parts.pending if isinstance(units, _LazyDict) else {}


def changed_parts(state: KernelState, stored: Mapping[str, bytes]) -> tuple[Parts, int]:
    """The parts of ``state`` whose encoding differs from ``stored`` (part
    key -> digest of what is stored), and how many parts the state has.
    Plans still pending (never decoded) are unchanged by construction."""
    if state.run_id:
        raise ValueError("a snapshot is of the log's fold, not of a driven run (run_id must be empty)")
    enc = _ENC.encode
    core = msgspec.structs.replace(
        state,
        units={},
        plans={},
        contents={},
        subagents=msgspec.structs.replace(state.subagents, spawned={}),
        gates=msgspec.structs.replace(state.gates, costs=msgspec.structs.replace(state.gates.costs, by_unit={})),
        cost_table=CostTable(),
        schedule=None,
    )
    out: Parts = {}
    data = enc(core)
    d = digest(data)
    if stored.get(CORE) != d:
        out[CORE] = (d, data)
    by_plan: dict[str, PlanPart] = {}
    for plan_id, graph in dict.items(state.plans):
        by_plan[plan_id] = PlanPart(graph=graph, units={})
    for (plan_id, unit_id), rec in dict.items(state.units):
        part = by_plan.get(plan_id)
        if part is None:
            part = by_plan[plan_id] = PlanPart(units={})
        part.units[unit_id] = rec
    for plan_id, children in dict.items(state.subagents.spawned):
        part = by_plan.get(plan_id)
        if part is None:
            part = by_plan[plan_id] = PlanPart(units={})
        part.spawned = children
    for plan_id, content in dict.items(state.contents):
        part = by_plan.get(plan_id)
        if part is None:
            part = by_plan[plan_id] = PlanPart(units={})
        if content.graph is not None and content.graph is part.graph:  # the same object: stored once
            part.content = msgspec.structs.replace(content, graph=None)
            part.content_graph_is_graph = True
        else:
            part.content = content
    for key, usd in dict.items(state.gates.costs.by_unit):
        plan_id, _sep, unit_id = key.partition(UNIT_KEY_SEP)
        part = by_plan.get(plan_id)
        if part is None:
            part = by_plan[plan_id] = PlanPart(units={})
        part.spent[unit_id] = usd
    for plan_id, part in by_plan.items():
        data = zlib.compress(enc(part), 1)  # deterministic: an unchanged part compresses to the same bytes
        d = digest(data)
        key = PLAN_PREFIX + plan_id
        if stored.get(key) != d:
            out[key] = (d, data)
    return out, 1 + len(by_plan) + len(_pending(state).keys() - by_plan.keys())


__all__ = [
    "CORE",
    "PLAN_PREFIX",
    "VERSION",
    "PlanPart",
    "PlanParts",
    "changed_parts",
    "digest",
    "intact",
    "materialize",
    "restore",
]
