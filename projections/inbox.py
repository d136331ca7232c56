"""Per-agent inboxes: a pure fold of ``MessageSent`` / ``MessageRead`` (behaviour §8).

The log keeps every message forever; this read model keeps the newest
``retention`` messages of each recipient (default 200, the seed's bounded
inbox), plus exact counters, so an inbox's memory is bounded however long
the log grows:

* ``received``: messages ever addressed to the agent;
* ``read``: how many of them were marked read. A message is read at most
  once (its ``MessageRead`` is pinned to version 2 of the message's stream),
  so ``unread = received - read`` stays exact even for messages that have
  aged out of the retained window.

Because it is a fold, there is no cache that can drift from the truth:
``uok.adapters.bus.MessageBus`` folds the events appended since the position it
last saw on every call, whichever process appended them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from uok.domain.events import Event, MessageRead, MessageSent
from uok.projections.base import Projection

DEFAULT_RETENTION = 200


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    sender: str
    recipient: str
    topic: str = ""
    payload: dict[str, Any] = {}
    sent_at: datetime
    position: int
    dedupe_key: str = ""
    read_at: datetime | None = None
    run_id: str = ""  # the run and turn of the task that sent it ("" from outside a run)
    turn_id: str = ""

    @property
    def unread(self) -> bool:
        return self.read_at is None


class AgentInbox(msgspec.Struct, kw_only=True):
    messages: dict[str, Message] = {}  # retained, oldest first (insertion order)
    received: int = 0
    read: int = 0

    @property
    def unread(self) -> int:
        return self.received - self.read


class InboxState(msgspec.Struct, kw_only=True):
    agents: dict[str, AgentInbox] = {}
    total: int = 0
    pairs: set[tuple[str, str]] = msgspec.field(default_factory=set)  # unordered (a, b), a <= b

    def inbox(self, agent: str) -> AgentInbox:
        return self.agents.get(agent) or AgentInbox()


def message_of(position: int, e: MessageSent) -> Message:
    return Message(
        id=e.message_id,
        sender=e.sender,
        recipient=e.recipient,
        topic=e.topic,
        payload=e.payload,
        sent_at=e.at,
        position=position,
        dedupe_key=e.dedupe_key,
        run_id=e.run_id,
        turn_id=e.turn_id,
    )


class InboxProjection(Projection[InboxState]):
    name = "inbox"
    version = 1
    state_type = InboxState
    types: ClassVar[frozenset[str] | None] = frozenset({"MessageSent", "MessageRead"})

    def __init__(self, retention: int = DEFAULT_RETENTION):
        if retention < 1:
            raise ValueError(f"retention must be >= 1, got {retention}")
        self.retention = retention

    def apply(self, state: InboxState, position: int, event: Event) -> InboxState:
        if isinstance(event, MessageSent):
            box = state.agents.get(event.recipient)
            if box is None:
                box = state.agents[event.recipient] = AgentInbox()
            box.messages[event.message_id] = message_of(position, event)
            box.received += 1
            state.total += 1
            a, b = sorted((event.sender, event.recipient))
            state.pairs.add((a, b))
            while len(box.messages) > self.retention:
                del box.messages[next(iter(box.messages))]
        elif isinstance(event, MessageRead):
            box = state.agents.get(event.reader)
            if box is None:
                return state  # read by someone it was not addressed to: not an inbox read
            box.read += 1
            msg = box.messages.get(event.message_id)
            if msg is not None and msg.read_at is None:
                box.messages[event.message_id] = msgspec.structs.replace(msg, read_at=event.at)
        return state
