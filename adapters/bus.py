"""The durable message bus (behaviour §8): messages are events, inboxes are folds.

* ``send`` appends a ``MessageSent`` with a fresh uuid to its own stream
  ``msg:<id>`` at version 1.
* ``send_once(…, key)`` derives the id from (sender, recipient, topic, key)
  with SHA-256, so the same logical message always has the same id. If it
  exists, nothing is written and the id is returned. The check is not a
  read-then-write race: a concurrent duplicate claims the same
  ``(msg:<id>, 1)`` and fails on UNIQUE(stream, version), and that
  ``IntegrityError`` is caught and answered with the id.
* ``mark_read`` appends a ``MessageRead`` at version 2 of the message's
  stream: a message is read at most once, whoever races.
* Inboxes (``inbox``, ``unread_count``) come from ``uok.projections.inbox``,
  folded forward from the last position this object saw on *every* call,
  so a message another process sent is visible on the next call and there
  is no cache to drift (the seed's 30 s ``_maybeRefresh`` problem).
* ``subscribe(agent)`` gives a cursor that returns each new message for the
  agent exactly once, in log order, however many arrive between polls:
  the retained inbox window does not limit it.
* ``conversation(a, b)`` reads the log (not the bounded read model), so it
  is complete.

Bus messages written outside a run carry ``run_id = ""``; a task's carry its
run and turn (``uok bus`` reads them from the task's ``UOK_RUN_ID`` and
``UOK_TURN_ID``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from uok.adapters.eventlog import EventLog
from uok.adapters.secrets import redact, redact_data
from uok.domain.errors import InputError
from uok.domain.events import MessageRead, MessageSent
from uok.domain.log import codec
from uok.domain.log.errors import IntegrityError
from uok.domain.log.store import CommitListener, StoredRecord
from uok.projections.inbox import DEFAULT_RETENTION, InboxProjection, InboxState, Message, message_of

Clock = Callable[[], datetime]

SENT_TOPIC = codec.topic_of(MessageSent)
READ_TOPIC = codec.topic_of(MessageRead)
_TOPICS = (SENT_TOPIC, READ_TOPIC)
_ID_HEX = 32  # 128 bits of SHA-256: collisions are not a practical concern


class BusError(InputError, ValueError):
    """A bus request that cannot be honoured (bad agent name, unknown message)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def dedupe_id(sender: str, recipient: str, topic: str, key: str) -> str:
    """The deterministic id of ``send_once``: sha256(sender|recipient|topic|key), truncated."""
    raw = "\x1f".join((sender, recipient, topic, key)).encode()
    return hashlib.sha256(raw).hexdigest()[:_ID_HEX]


def _check_agent(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise BusError(f"{what} must be a non-empty agent name")


class Subscription:
    """A cursor over one agent's incoming messages; see :meth:`MessageBus.subscribe`."""

    def __init__(self, log: EventLog, agent: str, after: int):
        self.log, self.agent, self.position = log, agent, after
        self._listener: CommitListener | None = None

    def wait(self, timeout: float | None = None) -> list[Message]:
        """Like :meth:`poll`, but blocks until a message for the agent arrives
        or ``timeout`` seconds pass (then ``[]``). Woken by the store's commit
        listener: LISTEN/NOTIFY on PostgreSQL, no polling loop."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        if self._listener is None:
            self._listener = self.log.store.listen()  # before the first poll: no commit is missed
        while True:
            got = self.poll()
            remaining = None if deadline is None else deadline - time.monotonic()
            if got or (remaining is not None and remaining <= 0):
                return got
            self._listener.wait(self.position, timeout=remaining)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def poll(self) -> list[Message]:
        """Messages to the agent appended since the last poll, in log order."""
        head = self.log.store.head()[0]
        if head <= self.position:
            return []
        out = []
        for r in self.log.store.read(self.position, upto=head, topics=(SENT_TOPIC,)):
            e = codec.decode(r.topic, r.payload)
            if e.recipient == self.agent:  # type: ignore[attr-defined]
                out.append(message_of(r.position, e))  # type: ignore[arg-type]
        self.position = head
        return out


class MessageBus:
    def __init__(
        self,
        log: EventLog,
        *,
        clock: Clock = utc_now,
        retention: int = DEFAULT_RETENTION,
        run_id: str = "",
        turn_id: str = "",
    ):
        """``run_id`` / ``turn_id``: the run (and turn) the messages this bus
        writes belong to: a run's shell, or a task of that run."""
        self.log = log
        self.clock = clock
        self.run_id = run_id
        self.turn_id = turn_id
        self.projection = InboxProjection(retention)
        self.state: InboxState = self.projection.initial()
        self.position = 0
        self._mark: tuple[int, int] | None = None  # the store's appended_mark when last read (refresh)

    # ------------------------------------------------------------------ sending

    def send(self, sender: str, recipient: str, topic: str = "", payload: dict[str, Any] | None = None) -> str:
        """Append a message; returns its (fresh, random) id."""
        message_id = uuid.uuid4().hex
        self._append_sent(message_id, sender, recipient, topic, payload, "")
        return message_id

    def send_once(self, sender: str, recipient: str, topic: str, payload: dict[str, Any] | None, key: str) -> str:
        """Idempotent send: one message per (sender, recipient, topic, key), ever."""
        return self.send_once_ex(sender, recipient, topic, payload, key)[0]

    def send_once_ex(
        self, sender: str, recipient: str, topic: str, payload: dict[str, Any] | None, key: str
    ) -> tuple[str, bool]:
        """``send_once`` that also says whether this call wrote the message."""
        if not key:
            raise BusError("send_once needs a non-empty key")
        message_id = dedupe_id(sender, recipient, topic, key)
        if self.log.store.stream_version(f"msg:{message_id}") > 0:
            return message_id, False
        try:
            self._append_sent(message_id, sender, recipient, topic, payload, key)
        except IntegrityError:
            return message_id, False  # a concurrent sender won the (msg:<id>, 1) slot
        return message_id, True

    def _append_sent(
        self, message_id: str, sender: str, recipient: str, topic: str, payload: dict[str, Any] | None, key: str
    ) -> None:
        _check_agent(sender, "sender")
        _check_agent(recipient, "recipient")
        if payload is not None and not isinstance(payload, dict):
            raise BusError(f"payload must be a JSON object, got {type(payload).__name__}")
        self.log.append(
            [
                MessageSent(
                    run_id=self.run_id,
                    at=self.clock(),
                    message_id=message_id,
                    sender=sender,
                    recipient=recipient,
                    topic=redact(topic),
                    payload=redact_data(dict(payload or {})),  # a message body is text from outside
                    dedupe_key=key,
                    turn_id=self.turn_id,
                )
            ]
        )

    # ------------------------------------------------------------------ reading

    def mark(self) -> tuple[int, int] | None:
        """A value that changes whenever a message event may have been
        appended since it was taken (:meth:`SqliteEventStore.appended_mark`);
        None where the store cannot tell."""
        marker = getattr(self.log.store, "appended_mark", None)
        return marker(_TOPICS) if marker is not None else None

    def refresh(self) -> InboxState:
        """Fold the message events appended since the last call (any process).
        On SQLite, nothing is read while no message event can have been
        appended since (:meth:`SqliteEventStore.appended_mark`)."""
        marker = getattr(self.log.store, "appended_mark", None)
        mark = marker(_TOPICS) if marker is not None else None
        if mark is not None and mark == self._mark:
            return self.state
        head = self.log.store.head()[0]
        self._mark = mark
        if head > self.position:
            apply, state = self.projection.apply, self.state
            for r in self.log.store.read(self.position, upto=head, topics=(SENT_TOPIC, READ_TOPIC)):
                state = apply(state, r.position, codec.decode(r.topic, r.payload))
            self.state, self.position = state, head
        return self.state

    def inbox(self, agent: str, *, include_read: bool = False, topic: str | None = None) -> list[Message]:
        """The agent's retained messages, oldest first (unread only by default)."""
        box = self.refresh().inbox(agent)
        return [m for m in box.messages.values() if (include_read or m.unread) and (topic is None or m.topic == topic)]

    def unread_count(self, agent: str) -> int:
        return self.refresh().inbox(agent).unread

    def message(self, message_id: str) -> Message | None:
        """One message by id, from the log (so aged-out messages are found too)."""
        found: Message | None = None
        for r in self.log.store.read(0, stream=f"msg:{message_id}"):
            e = codec.decode(r.topic, r.payload)
            if isinstance(e, MessageSent):
                found = message_of(r.position, e)
            elif isinstance(e, MessageRead) and found is not None:
                found = _read(found, e.at)
        return found

    def mark_read(self, agent: str, message_id: str) -> bool:
        """Mark a message to ``agent`` read; False if it was read already.

        Raises :class:`BusError` if no such message was sent to ``agent``."""
        msg = self.message(message_id)
        if msg is None:
            raise BusError(f"no message {message_id!r}")
        if msg.recipient != agent:
            raise BusError(f"message {message_id} is addressed to {msg.recipient}, not {agent}")
        if msg.read_at is not None:
            return False
        try:
            self.log.append([MessageRead(run_id=self.run_id, at=self.clock(), message_id=message_id, reader=agent)])
        except IntegrityError:
            return False  # another reader marked it first
        return True

    def subscribe(self, agent: str, *, after: int = 0) -> Subscription:
        """A cursor returning each message to ``agent`` after position ``after`` exactly once."""
        _check_agent(agent, "agent")
        return Subscription(self.log, agent, after)

    def conversation(self, a: str, b: str) -> list[Message]:
        """Every message between ``a`` and ``b`` (both directions), in log order."""
        msgs: dict[str, Message] = {}
        for r in self._message_records():
            e = codec.decode(r.topic, r.payload)
            if isinstance(e, MessageSent) and {e.sender, e.recipient} == {a, b} and (a != b or e.sender == a):
                msgs[e.message_id] = message_of(r.position, e)
            elif isinstance(e, MessageRead) and e.message_id in msgs:
                msgs[e.message_id] = _read(msgs[e.message_id], e.at)
        return list(msgs.values())

    def stats(self) -> dict[str, int]:
        """Behaviour §15 bus metrics: total, unread, unique agents, conversations."""
        state = self.refresh()
        agents = {x for pair in state.pairs for x in pair}
        return {
            "total": state.total,
            "unread": sum(box.unread for box in state.agents.values()),
            "agents": len(agents),
            "conversations": len(state.pairs),
        }

    def _message_records(self) -> Iterator[StoredRecord]:
        return self.log.store.read(0, topics=(SENT_TOPIC, READ_TOPIC))


def _read(msg: Message, at: datetime) -> Message:
    return msgspec.structs.replace(msg, read_at=at)
