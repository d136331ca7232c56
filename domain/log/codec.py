"""Encoding events to stored records and back, with an upcasting path.

The topic of a stored event is ``"<ClassName>/v<VERSION>"``; the payload is
msgspec JSON (which keeps datetimes, tuples and nested Structs typed, unlike
a generic JSON transcoder). Decoding picks a typed decoder by topic, so
reading a million events costs one dict lookup and one msgspec decode each.

When an event's shape changes: bump its ``VERSION`` and add an upcaster
``(name, old_version) -> fn(dict) -> dict`` to :mod:`uok.domain.log.upcasters`
that turns the old payload into the next version's. Old logs then decode
into today's Structs. (:func:`register_upcaster` adds one at run time.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def encode(event: Event) -> tuple[str, bytes]:
    """(topic, payload) for an event."""
    return topic_of(type(event)), _ENCODER.encode(event)


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
    "topic_of",
]
