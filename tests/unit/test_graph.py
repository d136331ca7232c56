"""Execution-graph algorithms (behaviour §12): what the scheduler may rely on."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uok.domain.plan import UnitNode
from uok.domain.plan.graph import (
    DEADLOCK_MESSAGE,
    CycleError,
    DeadlockError,
    FileConflict,
    Node,
    check_progress,
    clamp_workers,
    detect_file_conflicts,
    select_conflict_free_batch,
    select_reactive_dispatch_batch,
    topological_order,
)

ROOT = Path(__file__).resolve().parents[2]


def N(id: str, *deps: str, writes: tuple[str, ...] = ()) -> Node:
    return Node(id, tuple(deps), writes)


# --------------------------------------------------------------------------- reference implementations
# Straight transcriptions of the seed's algorithms (behaviour §12); the real ones must agree.


def spec_topological_sort(nodes: list[Node]) -> list[str]:
    ids = {n.id for n in nodes}
    indegree = {n.id: len({d for d in n.depends_on if d in ids}) for n in nodes}
    queue = sorted(n.id for n in nodes if indegree[n.id] == 0)
    out = []
    while queue:
        current = queue.pop(0)
        out.append(current)
        for n in nodes:
            if current in n.depends_on:
                indegree[n.id] -= 1
                if indegree[n.id] == 0:
                    queue.append(n.id)
                    queue.sort()
    return out


def spec_file_conflicts(nodes: list[Node]) -> list[FileConflict]:
    return [
        FileConflict(a.id, b.id, f)
        for i, a in enumerate(nodes)
        for b in nodes[i + 1 :]
        for f in b.writes
        if f in set(a.writes)
    ]


# --------------------------------------------------------------------------- topological_order


def test_spec_example_orders_a_b_c():
    assert topological_order([N("b", "a"), N("a"), N("c")]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "nodes, expected",
    [
        ([N("b"), N("a"), N("c")], ["a", "b", "c"]),  # no edges: plain sort
        ([N("a", "zz"), N("b", "a")], ["a", "b"]),  # unknown dependency ignored
        ([N("b", "a", "a"), N("a")], ["a", "b"]),  # a dependency listed twice counts once
        ([N("a"), N("B")], ["B", "a"]),  # tie-break is code-point order, not localeCompare
        ([N("z"), N("y", "z"), N("a", "y")], ["z", "y", "a"]),  # edges beat the tie-break
        ([N("c", "a"), N("b", "a"), N("a")], ["a", "b", "c"]),  # released together: sorted
        ([], []),
    ],
)
def test_order_is_kahn_with_smallest_ready_id_first(nodes, expected):
    assert topological_order(nodes) == expected


@pytest.mark.parametrize(
    "nodes, cycle",
    [
        ([N("a", "a")], ["a", "a"]),
        ([N("a", "b"), N("b", "a")], ["a", "b", "a"]),
        # b needs a, c needs b, a needs c: run order would be a -> b -> c -> a
        ([N("a", "c"), N("b", "a"), N("c", "b")], ["a", "b", "c", "a"]),
        # d is downstream of the cycle but not on it; x is fine
        ([N("x"), N("d", "c"), N("b", "c", "x"), N("c", "b")], ["b", "c", "b"]),
    ],
)
def test_a_cycle_is_reported_as_one_actual_cycle_in_run_order(nodes, cycle):
    with pytest.raises(CycleError) as info:
        topological_order(nodes)
    assert info.value.cycle == cycle
    assert " -> ".join(cycle) in str(info.value)


def test_duplicate_node_ids_are_a_caller_bug():
    with pytest.raises(ValueError, match="duplicate node id 'a'"):
        topological_order([N("a"), N("a")])


ids = st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=4)


@st.composite
def dags(draw):
    """A random DAG: edges only point from later to earlier in a hidden
    ranking, and the input order is an independent shuffle."""
    names = draw(st.lists(ids, min_size=0, max_size=25, unique=True))
    nodes = []
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), max_size=4)) if i else []
        extra = draw(st.lists(st.sampled_from(["ghost", "zz"]), max_size=1))  # unknown deps
        nodes.append(N(name, *deps, *extra))
    return draw(st.permutations(nodes))


@settings(max_examples=200, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_order_respects_every_edge_and_ignores_input_order(nodes, rnd):
    order = topological_order(nodes)
    assert sorted(order) == sorted(n.id for n in nodes)
    pos = {nid: i for i, nid in enumerate(order)}
    for n in nodes:
        for d in n.depends_on:
            if d in pos:
                assert pos[d] < pos[n.id], (d, n.id)
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert topological_order(shuffled) == order
    assert order == spec_topological_sort(nodes)


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_any_added_back_edge_is_found_as_a_real_cycle(nodes, data):
    if not nodes:
        return
    order = topological_order(nodes)
    # make some early node depend on a later one: a cycle through them appears
    i = data.draw(st.integers(0, len(order) - 1))
    j = data.draw(st.integers(i, len(order) - 1))
    early, late = order[i], order[j]
    by_id = {n.id: n for n in nodes}
    # ensure late reaches early by also making late depend on early
    by_id[late] = N(late, *by_id[late].depends_on, early) if late != early else by_id[late]
    by_id[early] = N(early, *by_id[early].depends_on, late)
    with pytest.raises(CycleError) as info:
        topological_order(list(by_id.values()))
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] == min(cycle)
    for before, after in itertools.pairwise(cycle):
        assert before in by_id[after].depends_on  # each arrow is a real edge, in run order


# --------------------------------------------------------------------------- detect_file_conflicts


def test_conflicts_are_reported_per_pair_and_file_in_input_order():
    nodes = [
        N("t1", writes=("a.ts", "b.ts")),
        N("t2", writes=("b.ts", "a.ts")),
        N("t3", writes=("c.ts",)),
        N("t4", writes=("a.ts",)),
    ]
    assert detect_file_conflicts(nodes) == [
        FileConflict("t1", "t2", "b.ts"),
        FileConflict("t1", "t2", "a.ts"),
        FileConflict("t1", "t4", "a.ts"),
        FileConflict("t2", "t4", "a.ts"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4), max_size=12))
def test_indexed_conflicts_match_the_spec_pairwise_loop(writes):
    nodes = [N(f"n{i}", writes=tuple(w)) for i, w in enumerate(writes)]
    assert detect_file_conflicts(nodes) == spec_file_conflicts(nodes)


# --------------------------------------------------------------------------- batches


def test_conflict_free_batch_spec_example():
    pair = {frozenset({"S01", "S02"})}
    has_conflict = lambda a, b: frozenset({a, b}) in pair  # noqa: E731
    assert select_conflict_free_batch(["S01", "S02", "S03", "S04"], 4, has_conflict) == ["S01", "S03", "S04"]


@pytest.mark.parametrize(
    "ordered, max_parallel, expected",
    [
        (["S01", "S02", "S03"], 0, []),
        (["S01", "S02", "S03"], -1, []),
        ([], 3, []),
        (["S01", "S02", "S03"], 2, ["S01", "S02"]),
    ],
)
def test_conflict_free_batch_limits(ordered, max_parallel, expected):
    assert select_conflict_free_batch(ordered, max_parallel, lambda a, b: False) == expected


def test_conflict_free_batch_asks_candidate_first():
    calls = []
    select_conflict_free_batch(["A", "B"], 2, lambda c, t: calls.append((c, t)) or False)
    assert calls == [("B", "A")]


REACTIVE_GRAPH = [
    N("T01", writes=("a.ts",)),
    N("T02", writes=("a.ts",)),
    N("T03", writes=("b.ts",)),
    N("T04", "T03", writes=("c.ts",)),
]


def test_reactive_batch_spec_example():
    selected, conflicts = select_reactive_dispatch_batch(REACTIVE_GRAPH, ["T01", "T02", "T03", "T04"], 3, {"c.ts"})
    assert selected == ["T01", "T03"]
    assert FileConflict("T01", "T02", "a.ts") in conflicts


@pytest.mark.parametrize(
    "ready, max_parallel, in_flight, expected",
    [
        (["T01", "T02"], 3, (), ["T01"]),  # second writer of a.ts waits
        (["T02", "T01"], 3, (), ["T02"]),  # ready order is the priority
        (["T01", "T03"], 1, (), ["T01"]),  # cap
        (["T01", "T02", "T03"], 3, ("a.ts",), ["T03"]),  # a running unit holds a.ts
        (["T03", "T04"], 3, (), ["T03", "T04"]),  # a dependency selected in this batch does not block (behaviour §12)
        (["T04", "T03"], 3, (), ["T03"]),  # ...but one not selected yet does
        (["ghost", "T03"], 3, (), ["T03"]),  # ids missing from the graph are skipped
        (["T01"], 0, (), []),
        ([], 3, (), []),
    ],
)
def test_reactive_batch_rules(ready, max_parallel, in_flight, expected):
    selected, _ = select_reactive_dispatch_batch(REACTIVE_GRAPH, ready, max_parallel, in_flight)
    assert selected == expected


def test_reactive_batch_reports_conflicts_even_when_nothing_can_be_selected():
    selected, conflicts = select_reactive_dispatch_batch(REACTIVE_GRAPH, ["T01", "T02"], 0)
    assert selected == [] and conflicts == [FileConflict("T01", "T02", "a.ts")]


def test_graph_functions_accept_unit_nodes():
    mk = lambda id, deps=(), writes=(): UnitNode(  # noqa: E731
        id=id, kind="unit", unit_type="execute-task", milestone="M", slice="S", depends_on=deps, writes=writes
    )
    nodes = [mk("b", ("a",), ("f",)), mk("a", (), ("f",))]
    assert topological_order(nodes) == ["a", "b"]
    assert detect_file_conflicts(nodes) == [FileConflict("b", "a", "f")]
    assert select_reactive_dispatch_batch(nodes, ["a", "b"], 2) == (["a"], [FileConflict("a", "b", "f")])


# --------------------------------------------------------------------------- workers and progress


@pytest.mark.parametrize("n, expected", [(None, 2), (-3, 1), (0, 1), (1, 1), (4, 4), (8, 8), (9, 8), (100, 8)])
def test_clamp_workers(n, expected):
    assert clamp_workers(n) == expected


@pytest.mark.parametrize(
    "remaining, ready, in_flight, deadlock",
    [
        (["a"], [], [], True),
        (["a"], ["a"], [], False),
        (["a"], [], ["b"], False),
        ([], [], [], False),
    ],
)
def test_check_progress(remaining, ready, in_flight, deadlock):
    if deadlock:
        with pytest.raises(DeadlockError, match="^" + DEADLOCK_MESSAGE + "$"):
            check_progress(remaining, ready, in_flight)
    else:
        check_progress(remaining, ready, in_flight)


# --------------------------------------------------------------------------- purity


@pytest.mark.parametrize("module", ["domain/plan/graph.py", "domain/plan/compile.py"])
def test_module_imports_only_stdlib_msgspec_and_domain(module):
    """domain/ is pure: no I/O, clock, randomness or environment modules."""
    banned = {"os", "io", "time", "random", "subprocess", "socket", "pathlib.Path", "shutil", "uuid", "secrets"}
    tree = ast.parse((ROOT / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in banned and name not in banned, name
