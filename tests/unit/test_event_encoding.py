"""The compact event encoding (issue 15): what ``codec.encode`` writes, and
why history stays readable.

* every event type round-trips, whatever fields hold their defaults
  (property test over values generated from each Struct's own types);
* a payload leaves out the ``type`` tag and every field at its default, and
  the bytes are the same each time (the hash chain covers them);
* a payload written the old way (tag and every field) decodes to the same
  event;
* the defaults of every topic are pinned (``event_defaults.json`` beside
  this file): a compact payload relies on them, so a changed default must
  be a new ``VERSION`` with an upcaster, never an edit in place.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uok.domain.events import Event
from uok.domain.log import codec

PINNED = Path(__file__).with_name("event_defaults.json")


def _classes() -> list[type[Event]]:
    """Every event class uok defines (tests may define more at run time)."""
    out: list[type[Event]] = []
    todo = list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("uok.domain."):
            out.append(cls)
    return sorted(out, key=lambda c: c.__name__)


CLASSES = _classes()


def _default(f: msgspec.structs.FieldInfo) -> Any:
    if f.default is not msgspec.NODEFAULT:
        return f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return f.default_factory()
    return msgspec.NODEFAULT


def defaults_of(cls: type[Event]) -> dict[str, Any]:
    """Field -> its default, as JSON values, for the fields that have one."""
    found = {f.name: d for f in msgspec.structs.fields(cls) if (d := _default(f)) is not msgspec.NODEFAULT}
    return msgspec.json.decode(msgspec.json.encode(found))


def current_defaults() -> dict[str, dict[str, Any]]:
    return {codec.topic_of(cls): defaults_of(cls) for cls in CLASSES}


def test_the_defaults_of_every_topic_are_pinned():
    """A compact payload leaves out the fields at their default, so the
    defaults are part of the topic's schema. If this fails because you
    changed a default: bump the event's VERSION, add an upcaster that puts
    the OLD default into a payload lacking the field (uok.domain.log.upcasters),
    and add the new topic's entry to event_defaults.json; never edit an
    existing entry. A new event type or version: add its entry."""
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    now = current_defaults()
    missing = sorted(set(now) - set(pinned))
    assert not missing, f"topics with no pinned defaults (add them to {PINNED.name}): {missing}"
    changed = {topic: (pinned[topic], d) for topic, d in now.items() if pinned[topic] != d}
    assert not changed, f"defaults changed in place (pinned, now): {changed}"


def test_every_older_pinned_topic_still_has_an_upcaster():
    """An entry for an older version stays in the file; its payloads reach
    today's version through upcasters."""
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    for topic in pinned:
        name, _, version = topic.partition("/v")
        cls = codec.event_class(name)
        for v in range(int(version), cls.VERSION):
            assert (name, v) in codec._UPCASTERS, f"{topic}: no upcaster from v{v}"


# ---------------------------------------------------------------- generated events

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), _TEXT)
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=6,
)
_DATETIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC) + timedelta(0)
)


def _strategy(t: mi.Type, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.StrType):
        return _TEXT
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        return st.integers(-(2**63), 2**63 - 1)
    if isinstance(t, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.DateTimeType):
        return _DATETIMES
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.AnyType):
        return _JSON
    if isinstance(t, mi.UnionType):
        options = [x for x in t.types if depth < 3 or isinstance(x, mi.NoneType)] or list(t.types)
        return st.one_of(*(_strategy(x, depth) for x in options))
    if isinstance(t, mi.VarTupleType):
        return st.lists(_strategy(t.item_type, depth + 1), max_size=0 if depth >= 3 else 2).map(tuple)
    if isinstance(t, mi.DictType):
        keys = _strategy(t.key_type, depth + 1)
        return st.dictionaries(keys, _strategy(t.value_type, depth + 1), max_size=0 if depth >= 3 else 2)
    if isinstance(t, mi.StructType):
        return _struct(t, depth + 1)
    raise NotImplementedError(f"no strategy for {t!r}")  # a new kind of field: teach this test


def _struct(t: mi.StructType, depth: int) -> st.SearchStrategy[Any]:
    """The Struct with each field either at its default (if it has one) or
    a generated value: both sides of omit_defaults."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in t.fields:
        if f.name == "type":
            continue
        value = _strategy(f.type, depth)
        if not f.required:
            value = st.one_of(st.just(_DEFAULT), value)
        fields[f.name] = value

    def build(values: dict[str, Any]) -> Any:
        return t.cls(**{k: v for k, v in values.items() if v is not _DEFAULT})

    return st.fixed_dictionaries(fields).map(build)


_DEFAULT = object()  # "leave this field at its default"


@functools.cache
def _event_strategy(cls: type[Event]) -> st.SearchStrategy[Any]:
    """One strategy per event class, built on first use: building it reads
    the class's annotations (msgspec.inspect), ~1 ms an example otherwise."""
    return _struct(mi.type_info(cls), 0)


def _full_payload(event: Event) -> bytes:
    """The payload as uok wrote it before compact encoding: the tag, then every field."""
    data = {"type": type(event).__name__}
    data.update({f: getattr(event, f) for f in event.__struct_fields__})
    return msgspec.json.encode(data)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_every_event_type_round_trips_compact_and_full(cls: type[Event], data: st.DataObject):
    event = data.draw(_event_strategy(cls), label=cls.__name__)
    topic, payload = codec.encode(event)
    assert topic == f"{cls.__name__}/v{cls.VERSION}"
    assert codec.decode(topic, payload) == event
    assert codec.encode(event) == (topic, payload)  # deterministic: the chain hashes these bytes
    stored = msgspec.json.decode(payload)
    assert "type" not in stored  # the topic names the class
    for f in msgspec.structs.fields(cls):
        value = getattr(event, f.name)
        if f.default is not msgspec.NODEFAULT and value is f.default:
            assert f.name not in stored, f"{f.name} holds its default and was written"
        elif f.default_factory is not msgspec.NODEFAULT and not value:
            assert f.name not in stored, f"{f.name} is empty (its default) and was written"
        elif f.name not in stored:  # left out: it must read back as what the event holds
            assert value == _default(f), f"{f.name} was left out but is not at its default"
    assert codec.decode(topic, _full_payload(event)) == event  # a payload written before decodes the same


def test_a_compact_payload_is_smaller_by_what_it_leaves_out():
    """The figure docs/performance.md quotes: a ``true`` that printed nothing."""
    from uok.domain.events import ExecutionFinished, OutputLog

    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    e = ExecutionFinished(
        run_id="r20261201035329-db84c6",
        at=datetime(2026, 12, 1, 3, 53, 29, 205811, tzinfo=UTC),
        turn_id="r20261201035329-db84c6:1",
        unit_id="c0s0",
        exit_code=0,
        duration_ms=28,
        stdout_log=OutputLog(path="logs/r20261201035329-db84c6/c0s0.1.stdout", size=0, sha256=empty),
        stderr_log=OutputLog(path="logs/r20261201035329-db84c6/c0s0.1.stderr", size=0, sha256=empty),
    )
    _topic, payload = codec.encode(e)
    assert len(_full_payload(e)) == 641
    assert len(payload) == 457
    assert b'"timed_out"' not in payload and b'"type"' not in payload
