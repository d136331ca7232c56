"""Hypothesis fuzzing of the two parsers that read untrusted bytes.

* ``uok.domain.plan.compile_plan`` on arbitrary text, on TOML-ish text stitched
  from plan fragments, and on structured random plans (valid shape, random
  and hostile values): it returns a graph or raises ``PlanError``, never
  anything else; a graph it returns is sound (a topological order of
  exactly its nodes, every edge to a known node, no path outside the root
  unless allowed).
* ``uok.domain.log.codec.decode`` on random topics and bytes, on mutated real
  payloads and on JSON objects shaped like events: it returns an ``Event``
  or raises ``codec.DecodeError``, never anything else.

Example counts are modest (see ``EXAMPLES``) to keep the suite fast; the
total is printed and recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import math
import posixpath
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uok.domain import events as ev
from uok.domain.events import Event
from uok.domain.log import codec
from uok.domain.plan import ID_PATTERN, PlanError, UnitGraph, compile_plan

pytestmark = pytest.mark.reliability

EXAMPLES = 400
STRUCTURED_EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COUNTS: dict[str, int] = {}


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


# ----------------------------------------------------------------- plans


def check_plan(source: str) -> None:
    try:
        graph = compile_plan(source, filename="fuzz.toml")
    except PlanError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        return
    assert isinstance(graph, UnitGraph)
    ids = [n.id for n in graph.nodes]
    assert len(set(ids)) == len(ids)
    assert sorted(graph.order) == sorted(ids)
    seen: set[str] = set()
    for uid in graph.order:  # every dependency comes earlier in the order
        node = graph.node(uid)
        assert set(node.depends_on) <= seen, (uid, node.depends_on)
        seen.add(uid)
    for n in graph.nodes:
        if n.unit_type == "execute-task":
            assert ID_PATTERN.fullmatch(n.id)
            assert n.timeout > 0 and math.isfinite(n.timeout)
            assert n.retries >= 0 and n.max_dispatches >= n.retries + 1
            assert n.command is None or (len(n.command) >= 1 and n.command[0])
            assert n.shell is False or (n.command is not None and len(n.command) == 1)
        if not graph.allow_outside_root:
            for p in (*n.writes, *((n.cwd,) if n.cwd else ())):
                assert not p.startswith("/") and p != ".." and not p.startswith("../"), p
                assert posixpath.normpath(p) == p


@FUZZ
@given(st.text(max_size=400))
def test_plan_compiler_on_arbitrary_text(source: str):
    _count("plan: arbitrary text")
    check_plan(source)


FRAGMENTS = [
    "[plan]",
    'id = "p"',
    'id = "bad id"',
    "id = 3",
    'title = "t"',
    "allow_outside_root = true",
    "allow_outside_root = 1",
    "[[milestones]]",
    'id = "M1"',
    'id = "M2"',
    "[[milestones.slices]]",
    'id = "S1"',
    "[[milestones.slices.tasks]]",
    'id = "a"',
    'id = "b"',
    'id = "a"',
    'command = ["echo", "x"]',
    'command = "echo x"',
    "command = []",
    'command = [""]',
    "shell = true",
    'depends_on = ["a"]',
    'depends_on = ["b"]',
    "depends_on = []",
    'depends_on = ["nope"]',
    'writes = ["out/a"]',
    'writes = ["../x"]',
    'writes = ["/etc/passwd"]',
    'writes = ["a", "./a"]',
    'cwd = ".."',
    'cwd = "sub"',
    'cwd = "C:\\\\x"',
    "timeout = 0",
    "timeout = -1",
    "timeout = inf",
    "timeout = nan",
    "timeout = 1e308",
    "retries = -1",
    "retries = 3",
    "max_dispatches = 1",
    'gates = ["security"]',
    'gates = [{ id = "g", command = ["true"] }]',
    "gates = [1]",
    'env = { K = "v" }',
    "env = { K = 1 }",
    "[milestones.slices.tasks.metadata]",
    "when = 1979-05-27",
    "x = 1",
    "[",
    "]",
    "=",
    '"',
    "'''",
    "\\u0000",
    "# comment",
    "depends-on = []",
    "[plan.extra]",
]


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_plan_compiler_on_toml_ish_fragments(fragments: list[str]):
    _count("plan: TOML-ish fragments")
    check_plan("\n".join(fragments))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string for these characters (no Cc, no surrogates)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_doc(doc: dict) -> str:
    return "\n".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in doc.items())


SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
GOOD_IDS = st.sampled_from(["a", "b", "c", "d", "t1", "t2", "M1", "S1", "x.y", "_"])
BAD_IDS = st.sampled_from(["bad id", "", "-x", "a/b", "complete-slice:M/S", "ü"])
IDS = st.integers(0, 19).flatmap(lambda i: BAD_IDS if i == 0 else GOOD_IDS)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-2, 2**63 - 1),
    st.floats(allow_nan=True),
    SAFE_TEXT,
    st.just(datetime(2026, 1, 1, tzinfo=UTC)),
)
ANY = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(SAFE_TEXT, inner, max_size=3)),
    max_leaves=8,
)
PATHS = st.sampled_from(
    ["out/a", "out/./a", "../up", "/abs", "a/../../b", "C:\\w", "\\\\server\\s", ".", "sub/dir", "a\\b"]
)


def maybe(strategy):
    """Mostly the right type (so generation reaches the deeper checks), sometimes anything."""
    return st.integers(0, 19).flatmap(lambda i: ANY if i == 0 else strategy)


def _id(table: dict) -> str:
    return repr(table.get("id"))


TASK = st.fixed_dictionaries(
    {"id": maybe(IDS)},
    optional={
        "title": maybe(SAFE_TEXT),
        "command": st.one_of(st.lists(SAFE_TEXT, max_size=3), SAFE_TEXT, ANY),
        "shell": maybe(st.booleans()),
        "depends_on": st.one_of(st.lists(IDS, max_size=3), ANY),
        "writes": st.one_of(st.lists(PATHS, max_size=3), ANY),
        "timeout": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**20), ANY),
        "retries": st.one_of(st.integers(-3, 10**20), ANY),
        "max_dispatches": st.one_of(st.integers(-3, 50), ANY),
        "gates": st.one_of(
            st.lists(
                st.one_of(
                    IDS,
                    st.fixed_dictionaries(
                        {"id": IDS},
                        optional={
                            "command": st.lists(SAFE_TEXT, max_size=2),
                            "timeout": ANY,
                            "files": st.lists(PATHS, max_size=2),
                        },
                    ),
                ),
                max_size=3,
            ),
            ANY,
        ),
        "cwd": maybe(PATHS),
        "env": st.one_of(st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=2), ANY),
        "metadata": ANY,
    },
)
SLICE = st.fixed_dictionaries(
    {"id": maybe(IDS), "tasks": st.lists(TASK, min_size=1, max_size=3, unique_by=_id)},
    optional={"title": maybe(SAFE_TEXT)},
)
MILESTONE = st.fixed_dictionaries(
    {"id": maybe(IDS), "slices": st.lists(SLICE, min_size=1, max_size=2, unique_by=_id)}, optional={"title": SAFE_TEXT}
)
PLAN = st.fixed_dictionaries(
    {"milestones": st.lists(MILESTONE, min_size=1, max_size=2, unique_by=_id)},
    optional={
        "plan": st.fixed_dictionaries(
            {}, optional={"id": maybe(IDS), "title": maybe(SAFE_TEXT), "allow_outside_root": maybe(st.booleans())}
        )
    },
)


@settings(FUZZ, max_examples=STRUCTURED_EXAMPLES)  # each example is a whole plan: generation dominates
@given(PLAN)
def test_plan_compiler_on_structured_random_plans(doc: dict):
    _count("plan: structured random plans")
    check_plan(toml_doc(doc))


# ----------------------------------------------------------------- codec

AT = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLES: list[Event] = [
    ev.KernelEntered(run_id="r", at=AT, pid=1, plan_path="p", plan_source="[plan]", workers=2, flags={"k": [1, 2]}),
    ev.UnitTransitioned(
        run_id="r", at=AT, plan_id="p", unit_id="u", from_state="queued", to_state="claimed", attempt=1, dispatches=1
    ),
    ev.ExecutionFinished(run_id="r", at=AT, turn_id="r:1", unit_id="u", exit_code=0, duration_ms=3, stdout_tail="out"),
    ev.KernelExited(run_id="r", at=AT, status="ok", pid=1),
]


def known_topics() -> list[str]:
    codec.event_class("KernelEntered")  # fills the registry
    return sorted(codec.topic_of(cls) for cls in codec._CLASSES.values())


def check_decode(topic: str, payload: bytes) -> None:
    try:
        event = codec.decode(topic, payload)
    except codec.DecodeError:
        return
    assert isinstance(event, Event)


TOPICS = st.one_of(
    st.sampled_from(known_topics()),
    st.text(max_size=30),
    st.builds(
        lambda n, v: f"{n}/v{v}",
        st.sampled_from([c.split("/")[0] for c in known_topics()]),
        st.text("0123456789²٣", min_size=1, max_size=3),
    ),
)


@FUZZ
@given(TOPICS, st.binary(max_size=300))
def test_decode_random_topics_and_bytes(topic: str, payload: bytes):
    _count("codec: random topic + bytes")
    check_decode(topic, payload)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_decode_mutated_real_payloads(event: Event, data):
    _count("codec: mutated real payloads")
    topic, payload = codec.encode(event)
    assert codec.decode(topic, payload) == event
    mutation = data.draw(st.sampled_from(["flip", "truncate", "insert", "other-topic"]))
    if mutation == "flip" and payload:
        i = data.draw(st.integers(0, len(payload) - 1))
        payload = payload[:i] + bytes([payload[i] ^ data.draw(st.integers(1, 255))]) + payload[i + 1 :]
    elif mutation == "truncate":
        payload = payload[: data.draw(st.integers(0, len(payload)))]
    elif mutation == "insert":
        i = data.draw(st.integers(0, len(payload)))
        payload = payload[:i] + data.draw(st.binary(min_size=1, max_size=8)) + payload[i:]
    else:
        topic = data.draw(st.sampled_from(known_topics()))
    check_decode(topic, payload)


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10,
)


@FUZZ
@given(
    st.sampled_from(known_topics()),
    st.dictionaries(
        st.sampled_from(
            [
                "run_id",
                "at",
                "pid",
                "unit_id",
                "turn_id",
                "status",
                "to_state",
                "graph",
                "flags",
                "probes",
                "exit_code",
                "type",
            ]
        ),
        JSONISH,
        max_size=6,
    ),
)
def test_decode_event_shaped_json(topic: str, fields: dict):
    _count("codec: event-shaped JSON")
    fields.setdefault("type", topic.split("/")[0])
    check_decode(topic, msgspec.json.encode(fields))


def test_deeply_nested_payload_is_a_decode_error():
    topic = codec.topic_of(ev.KernelEntered)
    check_decode(topic, b"[" * 100_000)
    check_decode(topic, b'{"flags":' * 50_000)


def test_zz_report_counts():
    """Runs last in this module (name order is file order): prints how many cases ran."""
    total = sum(COUNTS.values())
    print("\nfuzz cases: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())) + f", total={total}")
    assert total == 0 or len(COUNTS) < 6 or total >= 5 * EXAMPLES + STRUCTURED_EXAMPLES
