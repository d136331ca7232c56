"""Encoding events to stored records and back, with an upcasting path.

The topic of a stored event is ``"<ClassName>/v<VERSION>"``; the payload is
msgspec JSON (which keeps datetimes, tuples and nested Structs typed, unlike
a generic JSON transcoder). Decoding picks a typed decoder by topic, so
reading a million events costs one dict lookup and one msgspec decode each.

When an event's shape changes: bump its ``VERSION`` and add an upcaster
``(name, old_version) -> fn(dict) -> dict`` to :mod:`uok.domain.log.upcasters`
that turns the old payload into the next version's. Old logs then decode
into today's Structs. (:func:`register_upcaster` adds one at run time.)

Compact payloads (issue 15). Two things every payload used to repeat are
left out of what :func:`encode` writes, both recovered exactly on decoding:

* the ``"type"`` tag: the topic names the class already, and decoding picks
  the class by topic (a payload that still holds its tag, as every one
  written before did, decodes the same);
* every field holding its default (``omit_defaults`` on
  :class:`uok.domain.events.Event`): decoding fills in the defaults of the
  topic's version. Changing a default is therefore a new ``VERSION`` with an
  upcaster that fills in the old one (``tests/unit/event_defaults.json`` pins
  them; ``tests/unit/test_event_encoding.py`` fails when one moves).

The encoding is deterministic (fields in declaration order, nothing
optional), as the hash chain over the stored bytes needs; old payloads are
never re-encoded, they are hashed as they were written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from uok.domain import events as _events
from uok.domain.errors import IntegrityFailure
from uok.domain.events import Event
from uok.domain.log.upcasters import UPCASTERS, Upcaster

_UPCASTERS: dict[tuple[str, int], Upcaster] = dict(UPCASTERS)  # the table, plus any registered at run time
_CLASSES: dict[str, type[Event]] = {}
_DECODERS: dict[str, msgspec.json.Decoder[Event]] = {}
_ENCODER = msgspec.json.Encoder()


class DecodeError(IntegrityFailure, ValueError):
    """A stored (topic, payload) pair that cannot become an event. Every
    failure of :func:`decode` is one of these, so a reader can tell a
    damaged or foreign log from a bug (and the CLI exits 3, not with a
    traceback)."""


class UnknownEventError(DecodeError):
    """A stored topic names no event class this version of uok knows."""


class MalformedEventError(DecodeError):
    """The payload is not a valid encoding of the event its topic names."""


def _walk(cls: type[Event]) -> Iterable[type[Event]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _walk(sub)


def _ensure_registry() -> None:
    # Event classes register by subclassing Event; importing the vocabulary
    # package (uok.domain.events, above) loaded every module that defines one.
    for cls in _walk(Event):
        _CLASSES.setdefault(cls.__name__, cls)


def topic_of(cls: type[Event]) -> str:
    return f"{cls.__name__}/v{cls.VERSION}"


def register_upcaster(name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator: ``fn`` turns a ``name`` payload of ``from_version`` into ``from_version + 1``."""

    def deco(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(name, from_version)] = fn
        return fn

    return deco


_TAGS: dict[type, tuple[str, bytes]] = {}  # class -> (topic, b'{"type":"Name"')


def _tag_of(cls: type[Event]) -> tuple[str, bytes]:
    found = _TAGS.get(cls)
    if found is None:
        tag = cls.__struct_config__.tag_field, cls.__struct_config__.tag
        found = _TAGS[cls] = (topic_of(cls), b"{" + _ENCODER.encode(tag[0]) + b":" + _ENCODER.encode(tag[1]))
    return found


def encode(event: Event) -> tuple[str, bytes]:
    """(topic, payload) for an event: compact JSON, without the type tag
    (the topic names it) and without fields at their default."""
    topic, tag = _tag_of(type(event))
    raw = _ENCODER.encode(event)
    # msgspec writes the tag first: '{"type":"Name",' + the fields + '}'
    n = len(tag)
    if raw.startswith(tag):
        if raw[n : n + 1] == b",":
            return topic, b"{" + raw[n + 1 :]
        return topic, b"{" + raw[n:]  # no field follows: '{}'
    return topic, raw  # pragma: no cover  (msgspec always writes the tag first)


def to_builtins(event: Event) -> dict[str, Any]:
    """The event as plain JSON values with EVERY field, defaults included,
    and its ``type`` first: what ``uok events --json`` prints and a diff
    compares, whatever the stored (compact) payload leaves out."""
    config = event.__struct_config__
    out: dict[str, Any] = {config.tag_field: config.tag} if config.tag_field is not None else {}
    for name in event.__struct_fields__:
        out[name] = msgspec.to_builtins(getattr(event, name))
    return out


def event_class(name: str) -> type[Event]:
    if not _CLASSES:
        _ensure_registry()
    try:
        return _CLASSES[name]
    except KeyError:
        _ensure_registry()
        if name in _CLASSES:
            return _CLASSES[name]
        raise UnknownEventError(f"unknown event type {name!r}") from None


def decode(topic: str, payload: bytes) -> Event:
    """The event a stored (topic, payload) pair holds, upcast to today's version.

    Raises :class:`DecodeError` (and only that) when it cannot."""
    dec = _DECODERS.get(topic)
    if dec is not None:
        try:
            return dec.decode(payload)
        except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
            # ValueError: msgspec lets UnicodeDecodeError through for invalid
            # UTF-8 in a string; RecursionError: absurdly deep nesting (both found by fuzzing)
            raise MalformedEventError(f"{topic}: {type(exc).__name__}: {exc}") from None
    try:
        return _decode_slow(topic, payload)
    except DecodeError:
        raise
    except Exception as exc:  # a bad payload, or an upcaster choking on one  # noqa: BLE001
        raise MalformedEventError(f"{topic!r}: {type(exc).__name__}: {exc}") from None


def _decode_slow(topic: str, payload: bytes) -> Event:
    """First sight of a topic: find its class (and decoder), or upcast."""
    if not isinstance(topic, str):
        raise UnknownEventError(f"event topic must be a string, got {type(topic).__name__}")
    name, sep, ver = topic.partition("/v")
    if not sep or not ver.isdigit():
        raise UnknownEventError(f"malformed event topic {topic!r}")
    cls = event_class(name)
    version = int(ver)
    if version == cls.VERSION:
        dec = _DECODERS[topic] = msgspec.json.Decoder(cls)
        return dec.decode(payload)
    if version > cls.VERSION:
        raise UnknownEventError(f"{topic} is newer than this uok understands (v{cls.VERSION})")
    data = msgspec.json.decode(payload)
    while version < cls.VERSION:
        try:
            up = _UPCASTERS[(name, version)]
        except KeyError:
            raise UnknownEventError(f"no upcaster for {name} v{version} -> v{version + 1}") from None
        data = up(data)
        version += 1
    data["type"] = name
    return msgspec.convert(data, cls)


def is_observation(event: Event) -> bool:
    return type(event).OBSERVED


__all__ = [
    "DecodeError",
    "MalformedEventError",
    "UnknownEventError",
    "_events",
    "decode",
    "encode",
    "event_class",
    "is_observation",
    "register_upcaster",
    "to_builtins",
    "topic_of",
]
