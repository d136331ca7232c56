"""Plan files and their compilation to a unit graph (behaviour §11, adapted)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest
from uok.domain.plan import PlanError, UnitGraph, UnitNode, compile_plan, index
from uok.domain.plan.graph import FileConflict

PLANS = Path(__file__).resolve().parents[2] / "fixtures" / "plans"


def compile_text(text: str, filename: str = "plans/x.toml") -> UnitGraph:
    return compile_plan(textwrap.dedent(text), filename=filename)


def one_task(body: str, plan: str = "") -> str:
    """A plan with a single task whose table body is ``body``."""
    return (
        f'[plan]\n{plan}\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "t"\n{textwrap.dedent(body)}\n'
    )


def deps(graph: UnitGraph) -> dict[str, tuple[str, ...]]:
    return {n.id: n.depends_on for n in graph.nodes}


# --------------------------------------------------------------------------- the demo plan


@pytest.fixture(scope="module")
def demo() -> UnitGraph:
    path = PLANS / "demo.toml"
    return compile_plan(path.read_text(), filename=str(path))


def test_demo_compiles_to_tasks_plus_one_complete_slice_per_slice(demo):
    tasks = [n for n in demo.nodes if n.unit_type == "execute-task"]
    checks = [n for n in demo.nodes if n.unit_type == "complete-slice"]
    assert demo.plan_id == "demo" and len(demo.nodes) == 12
    assert len(tasks) == 8 and {n.kind for n in tasks} == {"unit"}
    assert [n.id for n in checks] == [
        "complete-slice:M1/S1",
        "complete-slice:M1/S2",
        "complete-slice:M2/S3",
        "complete-slice:M2/S4",
    ]
    assert all(n.kind == "verification" and n.command is None for n in checks)
    assert checks[0].title == "Backend"  # the slice's title
    assert sorted(demo.order) == sorted(n.id for n in demo.nodes)


def test_demo_reports_the_shared_file_pair(demo):
    assert demo.conflicts == (FileConflict("build-a", "build-b", "out/shared.txt"),)
    nodes = index(demo)
    assert nodes["build-a"].slice != nodes["build-b"].slice  # so only the conflict keeps them apart


def test_demo_m2_roots_wait_for_every_m1_slice(demo):
    m1_checks = ("complete-slice:M1/S1", "complete-slice:M1/S2")
    assert demo.node("integrate").depends_on == m1_checks
    assert demo.node("docs").depends_on == m1_checks
    assert demo.node("report").depends_on == ("integrate", "docs")  # not a root: no extra edges


def test_demo_has_a_flaky_task_with_a_retry_left(demo):
    flaky = demo.node("flaky")
    assert flaky.retries >= 1 and "flaky.marker" in flaky.command[-1]


# --------------------------------------------------------------------------- bad plans


@pytest.mark.parametrize(
    "name, task, problem",
    [
        ("cycle.toml", None, "cycle: a -> b -> c -> a"),
        ("unknown_dep.toml", "b", "depends on unknown task 'zz'"),
        ("duplicate_id.toml", "build", "duplicate task id"),
        ("empty.toml", None, "plan has no tasks"),
        ("malformed.toml", None, "malformed TOML: "),
    ],
)
def test_each_bad_fixture_names_the_file_and_the_problem(name, task, problem):
    path = f"fixtures/plans/bad/{name}"
    with pytest.raises(PlanError) as info:
        compile_plan((PLANS / "bad" / name).read_text(), filename=path)
    err = info.value
    assert err.file == path and err.task == task and err.problem.startswith(problem)
    assert str(err).startswith(f"{path}: ") and problem in str(err)


def test_malformed_toml_keeps_the_line_and_column():
    with pytest.raises(PlanError, match=r"at line 6, column \d+"):
        compile_plan((PLANS / "bad" / "malformed.toml").read_text(), filename="m.toml")


def test_plan_error_str_format():
    assert (
        str(PlanError("plans/x.toml", "depends on unknown task 'zz'", "b"))
        == "plans/x.toml: task 'b': depends on unknown task 'zz'"
    )
    assert str(PlanError("plans/x.toml", "cycle: a -> a")) == "plans/x.toml: cycle: a -> a"


@pytest.mark.parametrize(
    "body, problem",
    [
        ('command = "echo hi"', "command is a string; use an argv array, or set shell = true"),
        ('command = ["echo"]\nshell = true', "shell = true needs command to be a string"),
        ("shell = true", "shell = true without a command"),
        ("command = []", "command must be a non-empty array"),
        ('command = ["echo", 1]', "command must be a non-empty array"),
        ("command = 3", "command must be an array of strings or a string, got integer"),
        ('command = " "\nshell = true', "command must not be empty"),
        ('shell = "yes"', "shell must be a boolean"),
        ("retries = -1", "retries must be an integer >= 0, got -1"),
        ("retries = true", "retries must be an integer >= 0"),
        ("timeout = 0", "timeout must be a number of seconds > 0, got 0"),
        ("timeout = -1.5", "timeout must be a number of seconds > 0"),
        ("timeout = inf", "timeout must be a number of seconds > 0"),
        ("retries = 3\nmax_dispatches = 3", "max_dispatches must be an integer >= retries + 1 (4), got 3"),
        ("depends-on = []", "unknown key 'depends-on'"),
        ('depends_on = "a"', "depends_on must be an array of non-empty strings"),
        ('depends_on = ["t"]', None),  # a self-dependency is a cycle: checked below
        ('gates = ["v", "v"]', "gates lists 'v' twice"),
        ('writes = ["/etc/passwd"]', "writes path '/etc/passwd' is absolute"),
        ('writes = ["../x"]', "writes path '../x' escapes the plan root"),
        ('writes = ["out/../../x"]', "escapes the plan root"),
        ('writes = ["C:/x"]', "is absolute"),
        ('writes = ["out/a", "out/./a"]', "writes names the same file twice"),
        ('cwd = "../elsewhere"', "cwd path '../elsewhere' escapes the plan root"),
        ("cwd = 1", "cwd must be a non-empty string"),
        ("env = { A = 1 }", "env.A must be a string, got integer"),
        ('env = "A=1"', "env must be a table"),
        ("metadata = { when = 2024-01-01 }", "metadata.when is a TOML date"),
        ("metadata = { x = [1, nan] }", "metadata.x[1] is nan"),
        ("title = 3", "title must be a string"),
        ("metadata = 1", "metadata must be a table"),
    ],
)
def test_bad_task_fields_are_rejected_naming_the_task(body, problem):
    with pytest.raises(PlanError) as info:
        compile_text(one_task(body))
    if problem is None:
        assert info.value.problem == "cycle: t -> t"
    else:
        assert info.value.task == "t" and problem in info.value.problem, info.value.problem


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[plan]\nname = "x"\n', "[plan]: unknown key 'name'"),
        ('[[milestone]]\nid = "M1"\n', "unknown key 'milestone'"),
        ('[[milestones]]\nid = "M1"\nslice = []\n', "milestone 'M1': unknown key 'slice'"),
        ('[[milestones]]\ntitle = "no id"\n', "milestone #1: id is missing"),
        ('[[milestones]]\nid = "M 1"\n', "milestone #1: id must be a string matching"),
        ('[[milestones]]\nid = "M1"\n[[milestones]]\nid = "M1"\n', "duplicate milestone id 'M1'"),
        (
            '[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n[[milestones.slices]]\nid = "S1"\n',
            "milestone 'M1': duplicate slice id 'S1'",
        ),
        (
            '[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n[[milestones.slices.tasks]]\ntitle = "x"\n',
            "milestone 'M1' slice 'S1': task #1: id is missing",
        ),
        (
            '[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n[[milestones.slices.tasks]]\nid = "a:b"\n',
            "task #1: id must be a string matching",
        ),
        ("milestones = 3\n", "milestones must be an array of tables"),
        ('[plan]\nallow_outside_root = "yes"\n', "allow_outside_root must be a boolean"),
        ("", "plan has no tasks"),
    ],
)
def test_bad_plan_structure_is_rejected(text, problem):
    with pytest.raises(PlanError) as info:
        compile_text(text)
    assert problem in info.value.problem, info.value.problem


def test_plan_id_from_a_bad_file_name_must_be_set_explicitly():
    with pytest.raises(PlanError, match="set \\[plan\\] id"):
        compile_plan(one_task(""), filename="my plan.toml")
    assert compile_plan(one_task("", plan='id = "ok"'), filename="my plan.toml").plan_id == "ok"


# --------------------------------------------------------------------------- compilation rules

TWO_MILESTONES = """
    [[milestones]]
    id = "M1"
      [[milestones.slices]]
      id = "S1"
        [[milestones.slices.tasks]]
        id = "a"
        [[milestones.slices.tasks]]
        id = "b"
        [[milestones.slices.tasks]]
        id = "c"
      [[milestones.slices]]
      id = "S2"
        [[milestones.slices.tasks]]
        id = "d"
    [[milestones]]
    id = "M2"
      [[milestones.slices]]
      id = "S1"
        [[milestones.slices.tasks]]
        id = "e"
        [[milestones.slices.tasks]]
        id = "f"
        depends_on = []
        [[milestones.slices.tasks]]
        id = "g"
        depends_on = ["e", "d"]
"""


def test_chains_slices_and_milestones():
    g = compile_text(TWO_MILESTONES, filename="plans/two.toml")
    m1 = ("complete-slice:M1/S1", "complete-slice:M1/S2")
    assert deps(g) == {
        "a": (),
        "b": ("a",),
        "c": ("b",),  # a slice is a chain
        "complete-slice:M1/S1": ("c",),
        "d": (),  # slices of one milestone are not chained
        "complete-slice:M1/S2": ("d",),
        "e": m1,  # M2 roots wait for all of M1
        "f": m1,  # depends_on = [] drops the chain but a root still waits for M1
        "g": ("e", "d"),  # explicit deps replace the chain; not a root (e is in M2)
        "complete-slice:M2/S1": ("f", "g"),  # the slice's sinks, in task order
    }
    assert g.plan_id == "two" and g.order[:2] == ("a", "b")
    assert index(g)["complete-slice:M2/S1"].milestone == "M2"


def test_roots_wait_for_the_nearest_earlier_milestone_with_tasks():
    g = compile_text("""
        [[milestones]]
        id = "M1"
          [[milestones.slices]]
          id = "S1"
            [[milestones.slices.tasks]]
            id = "a"
        [[milestones]]
        id = "M2"
          [[milestones.slices]]
          id = "empty"
        [[milestones]]
        id = "M3"
          [[milestones.slices]]
          id = "S1"
            [[milestones.slices.tasks]]
            id = "z"
    """)
    assert [n.id for n in g.nodes] == ["a", "complete-slice:M1/S1", "z", "complete-slice:M3/S1"]
    assert g.node("z").depends_on == ("complete-slice:M1/S1",)


def test_a_cycle_through_milestone_edges_is_caught():
    text = TWO_MILESTONES.replace('id = "a"', 'id = "a"\n        depends_on = ["e"]')
    with pytest.raises(PlanError, match=r"cycle: .*complete-slice:M1/S1.*e"):
        compile_text(text)


def test_task_fields_and_defaults():
    g = compile_text(
        one_task("""
        title = "T"
        command = ["python3", "-c", "pass"]
        writes = ["out//a.txt", "./b"]
        timeout = 5
        retries = 1
        gates = ["verification"]
        cwd = "sub/./dir"
        env = { K = "v" }
        metadata = { owner = "alice", tags = ["x"], n = { deep = 1.5 } }
    """)
    )
    (t, check) = g.nodes
    assert t == UnitNode(
        id="t",
        kind="unit",
        unit_type="execute-task",
        milestone="M1",
        slice="S1",
        title="T",
        command=("python3", "-c", "pass"),
        writes=("out/a.txt", "b"),
        timeout=5.0,
        retries=1,
        max_dispatches=7,
        gates=("verification",),
        cwd="sub/dir",
        env={"K": "v"},
        metadata={"owner": "alice", "tags": ["x"], "n": {"deep": 1.5}},
    )
    assert isinstance(t.timeout, float)
    assert check.depends_on == ("t",) and check.command is None


def test_a_task_without_command_is_a_noop_unit_with_defaults():
    (t, _) = compile_text(one_task("")).nodes
    assert (t.command, t.shell, t.timeout, t.retries, t.max_dispatches, t.env) == (None, False, 600.0, 2, 8, {})


def test_shell_command_is_kept_as_one_string():
    (t, _) = compile_text(one_task('command = "echo hi | wc -c"\nshell = true')).nodes
    assert t.shell and t.command == ("echo hi | wc -c",)


def test_allow_outside_root_permits_absolute_and_parent_paths():
    g = compile_text(one_task('writes = ["/tmp/x", "../y"]\ncwd = ".."', plan="allow_outside_root = true"))
    assert g.allow_outside_root and g.nodes[0].writes == ("/tmp/x", "../y") and g.nodes[0].cwd == ".."


def test_slice_ids_may_repeat_across_milestones_but_task_ids_may_not():
    compile_text(TWO_MILESTONES)  # S1 in M1 and M2: fine
    with pytest.raises(PlanError) as info:
        compile_text(TWO_MILESTONES.replace('id = "g"', 'id = "a"'))
    assert info.value.task == "a" and "duplicate task id" in info.value.problem


def test_compilation_is_deterministic_and_survives_an_event_round_trip(demo):
    again = compile_plan((PLANS / "demo.toml").read_text(), filename=str(PLANS / "demo.toml"))
    assert again == demo
    encoded = msgspec.json.encode(demo)
    assert msgspec.json.encode(again) == encoded
    assert msgspec.json.decode(encoded, type=UnitGraph) == demo


def test_node_lookup_raises_for_unknown_ids(demo):
    assert demo.node("prepare").title == "Prepare workspace"
    with pytest.raises(KeyError):
        demo.node("nope")
