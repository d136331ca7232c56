"""``uok bus``: send, list, read and follow messages between agents (behaviour §8)."""

from __future__ import annotations

import argparse
import os

import orjson
from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_action, add_actions, add_command
from uok.adapters.cli.output import emit, emit_lines

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "bus",
        description="""
            A durable inter-agent mailbox. Every message is an event in the log (MessageSent,
            MessageRead); inboxes are folds of those events, so every call sees what other
            processes sent.

            Inside a task uok runs, the log is the run's own ($UOK_DB is set for the task) and a
            message the task sends carries its run and turn ids ($UOK_RUN_ID, $UOK_TURN_ID).
        """,
        examples="""
            uok bus send planner worker-1 --topic task '{"unit": "build"}'
            uok bus send planner worker-1 --key build-42 '{"unit": "build"}'   # at most once per key
            uok bus inbox worker-1            # unread messages
            uok bus read worker-1 MESSAGE_ID  # show it and mark it read
            uok bus conversation planner worker-1
        """,
    )
    bus = add_actions(p, "bus_command")

    s = add_action(
        bus,
        "send",
        help="send a message",
        description="""
            Send JSON (an object) from FROM to TO. Prints the message id. With --key the id is
            derived from (FROM, TO, topic, key) and a second send with the same key writes
            nothing and prints the same id. Creates the log if there is none.
        """,
        examples="""
            uok bus send planner worker-1 --topic task '{"unit": "build"}'
            uok bus send planner worker-1 --key build-42 '{"unit": "build"}' --json
        """,
    )
    s.add_argument("sender", metavar="FROM")
    s.add_argument("recipient", metavar="TO")
    s.add_argument("payload", metavar="JSON", help="the message body: a JSON object")
    s.add_argument("--topic", default="", metavar="T", help="topic (free text, e.g. 'task', 'steer')")
    s.add_argument("--key", metavar="K", help="idempotency key: send at most once per (FROM, TO, topic, K)")
    _json(s, "one JSON object: message_id, created")
    s.set_defaults(func=send)

    i = add_action(
        bus,
        "inbox",
        help="list an agent's messages",
        description="""
            List AGENT's unread messages, oldest first (--all: read ones too). The read model
            keeps the newest --retention messages per agent; the log keeps every message.
        """,
        examples="""
            uok bus inbox worker-1
            uok bus inbox worker-1 --all --topic task --json
        """,
    )
    i.add_argument("agent", metavar="AGENT")
    i.add_argument("--all", action="store_true", help="include messages already read")
    i.add_argument("--topic", metavar="T", help="only this topic")
    i.add_argument("--retention", type=int, default=200, metavar="N", help="messages kept per agent (default 200)")
    _json(i, "one JSON object: agent, unread, messages")
    i.set_defaults(func=inbox)

    r = add_action(
        bus,
        "read",
        help="show a message and mark it read",
        description="""
            Print the message and mark it read by AGENT (its recipient). Reading twice is
            harmless: a message is marked read once.
        """,
        examples="""
            uok bus read worker-1 MESSAGE_ID
            uok bus read worker-1 MESSAGE_ID --json
        """,
    )
    r.add_argument("agent", metavar="AGENT")
    r.add_argument("message_id", metavar="MESSAGE_ID")
    _json(r, "one JSON object: the message and marked_read")
    r.set_defaults(func=read)

    c = add_action(
        bus,
        "conversation",
        help="messages between two agents, in order",
        description="""
            Every message from A to B and from B to A, in log order (from the log, so nothing
            is cut by retention).
        """,
        examples="""
            uok bus conversation planner worker-1
            uok bus conversation planner worker-1 --json | jq -r .topic
        """,
    )
    c.add_argument("a", metavar="A")
    c.add_argument("b", metavar="B")
    _json(c, "NDJSON: one object per message")
    c.set_defaults(func=conversation)

    st = add_action(
        bus,
        "stats",
        help="totals: messages, unread, agents, conversations",
        description="Totals over the whole log: messages, unread messages, agents, conversations.",
        examples="""
            uok bus stats
            uok bus stats --json
        """,
    )
    _json(st, "one JSON object of the totals")
    st.set_defaults(func=stats)


def _json(p: argparse.ArgumentParser, shape: str) -> None:
    p.add_argument("--json", action="store_true", help=shape)


def _bus(args: argparse.Namespace, *, create: bool = False, readonly: bool = False, retention: int = 200):
    from uok.adapters.bus import MessageBus

    if retention < 1:
        raise InputError(f"--retention must be >= 1, got {retention}")
    log = open_log(args, create=create, readonly=readonly)
    log.store.verify_chain()  # a damaged log raises ChainBroken: exit 3, like every reading command
    # inside a task, what it sends carries its run and turn (uok.adapters.executor sets these)
    return MessageBus(
        log, retention=retention, run_id=os.environ.get("UOK_RUN_ID", ""), turn_id=os.environ.get("UOK_TURN_ID", "")
    )


def _msg(m) -> dict:
    return {
        "id": m.id,
        "from": m.sender,
        "to": m.recipient,
        "topic": m.topic,
        "payload": m.payload,
        "sent_at": m.sent_at.isoformat(),
        "read_at": m.read_at.isoformat() if m.read_at else None,
        "position": m.position,
        "dedupe_key": m.dedupe_key,
        "run_id": m.run_id,
        "turn_id": m.turn_id,
    }


def _line(m) -> str:
    flag = " " if m.read_at else "*"
    topic = f" [{m.topic}]" if m.topic else ""
    body = orjson.dumps(m.payload).decode()
    return f"{flag} {m.id}  {m.sent_at:%Y-%m-%d %H:%M:%S}  {m.sender} -> {m.recipient}{topic}  {body}"


def send(args: argparse.Namespace) -> int:

    try:
        payload = orjson.loads(args.payload)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"JSON is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InputError(f"JSON must be an object ({{...}}), got {type(payload).__name__}")
    bus = _bus(args, create=True)
    try:  # a BusError (bad agent name) exits 2
        if args.key is not None:
            message_id, created = bus.send_once_ex(args.sender, args.recipient, args.topic, payload, args.key)
        else:
            message_id, created = bus.send(args.sender, args.recipient, args.topic, payload), True
    finally:
        bus.log.store.close()
    if args.json:
        emit({"message_id": message_id, "created": created})
    else:
        print(message_id if created else f"{message_id} (already sent with this key: nothing written)")
    return 0


def inbox(args: argparse.Namespace) -> int:
    bus = _bus(args, readonly=True, retention=args.retention)
    msgs = bus.inbox(args.agent, include_read=args.all, topic=args.topic)
    unread = bus.unread_count(args.agent)
    if args.json:
        emit({"agent": args.agent, "unread": unread, "messages": [_msg(m) for m in msgs]})
        return 0
    print(f"{args.agent}: {unread} unread" + (f", showing {len(msgs)}" if args.all else ""))
    for m in msgs:
        print(_line(m))
    return 0


def read(args: argparse.Namespace) -> int:

    bus = _bus(args)
    marked = bus.mark_read(args.agent, args.message_id)  # BusError: exit 2
    m = bus.message(args.message_id)
    assert m is not None
    if args.json:
        emit({**_msg(m), "marked_read": marked})
    else:
        print(_line(m) + ("" if marked else "   (already read)"))
    return 0


def conversation(args: argparse.Namespace) -> int:
    msgs = _bus(args, readonly=True).conversation(args.a, args.b)
    if args.json:
        emit_lines(_msg(m) for m in msgs)
        return 0
    for m in msgs:
        print(_line(m))
    return 0


def stats(args: argparse.Namespace) -> int:
    s = _bus(args, readonly=True).stats()
    if args.json:
        emit(s)
    else:
        print("  ".join(f"{k}={v}" for k, v in s.items()))
    return 0
