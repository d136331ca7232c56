"""``uok bus``: send, list, read and follow messages between agents (behaviour §8)."""

from __future__ import annotations

import argparse
import sys

import orjson
from uok.adapters.cli.common import add_db_argument, open_log

from uok.errors import InputError

EPILOG = """\
examples:
  uok bus send planner worker-1 --topic task '{"unit": "build"}'
  uok bus send planner worker-1 --key build-42 '{"unit": "build"}'   # at most once per key
  uok bus inbox worker-1            # unread messages
  uok bus read worker-1 MESSAGE_ID  # show it and mark it read
  uok bus conversation planner worker-1
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bus",
        help="durable messages between agents",
        description="A durable inter-agent mailbox. Every message is an event in the log (MessageSent, "
        "MessageRead); inboxes are folds of those events, so every call sees what other processes sent.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bus = p.add_subparsers(dest="bus_command", metavar="ACTION")
    bus.required = True

    s = bus.add_parser(
        "send",
        help="send a message",
        description="Send JSON (an object) from FROM to TO. "
        "Prints the message id. With --key the id is derived from (FROM, TO, topic, key) and a "
        "second send with the same key writes nothing and prints the same id.",
    )
    s.add_argument("sender", metavar="FROM")
    s.add_argument("recipient", metavar="TO")
    s.add_argument("payload", metavar="JSON", help="the message body: a JSON object")
    s.add_argument("--topic", default="", metavar="T", help="topic (free text, e.g. 'task', 'steer')")
    s.add_argument("--key", metavar="K", help="idempotency key: send at most once per (FROM, TO, topic, K)")
    _common(s)
    s.set_defaults(func=send)

    i = bus.add_parser(
        "inbox",
        help="list an agent's messages",
        description="List AGENT's unread messages, oldest first (--all: read ones too). The read "
        "model keeps the newest --retention messages per agent; the log keeps every message.",
    )
    i.add_argument("agent", metavar="AGENT")
    i.add_argument("--all", action="store_true", help="include messages already read")
    i.add_argument("--topic", metavar="T", help="only this topic")
    i.add_argument("--retention", type=int, default=200, metavar="N", help="messages kept per agent (default 200)")
    _common(i)
    i.set_defaults(func=inbox)

    r = bus.add_parser(
        "read",
        help="show a message and mark it read",
        description="Print the message and mark it read by AGENT (its recipient). Reading twice "
        "is harmless: a message is marked read once.",
    )
    r.add_argument("agent", metavar="AGENT")
    r.add_argument("message_id", metavar="MESSAGE_ID")
    _common(r)
    r.set_defaults(func=read)

    c = bus.add_parser(
        "conversation",
        help="messages between two agents, in order",
        description="Every message from A to B and from B to A, in log order (from the log, "
        "so nothing is cut by retention).",
    )
    c.add_argument("a", metavar="A")
    c.add_argument("b", metavar="B")
    _common(c)
    c.set_defaults(func=conversation)

    st = bus.add_parser("stats", help="totals: messages, unread, agents, conversations")
    _common(st)
    st.set_defaults(func=stats)


def _common(p: argparse.ArgumentParser) -> None:
    add_db_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _bus(args: argparse.Namespace, *, create: bool = False, retention: int = 200):
    from uok.adapters.bus import MessageBus

    if retention < 1:
        raise InputError(f"--retention must be >= 1, got {retention}")
    log = open_log(args, create=create)
    log.store.verify_chain()  # a damaged log raises ChainBroken: exit 3, like every reading command
    return MessageBus(log, retention=retention)


def _out(data) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")


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
        _out({"message_id": message_id, "created": created})
    else:
        print(message_id if created else f"{message_id} (already sent with this key: nothing written)")
    return 0


def inbox(args: argparse.Namespace) -> int:
    bus = _bus(args, retention=args.retention)
    msgs = bus.inbox(args.agent, include_read=args.all, topic=args.topic)
    unread = bus.unread_count(args.agent)
    if args.json:
        _out({"agent": args.agent, "unread": unread, "messages": [_msg(m) for m in msgs]})
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
        _out({**_msg(m), "marked_read": marked})
    else:
        print(_line(m) + ("" if marked else "   (already read)"))
    return 0


def conversation(args: argparse.Namespace) -> int:
    msgs = _bus(args).conversation(args.a, args.b)
    if args.json:
        _out([_msg(m) for m in msgs])
        return 0
    for m in msgs:
        print(_line(m))
    return 0


def stats(args: argparse.Namespace) -> int:
    s = _bus(args).stats()
    if args.json:
        _out(s)
    else:
        print("  ".join(f"{k}={v}" for k, v in s.items()))
    return 0
