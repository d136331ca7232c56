"""``uok clarify``: a task's question/answer rounds with the operator or
another agent over the bus, limited per task and counted from the log
(behaviour §11, :mod:`uok.adapters.clarify`)."""

from __future__ import annotations

import argparse
import os

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_action, add_actions, add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "clarify",
        description="""
            Clarify rounds: a task with `clarify = true` (3 rounds) or `clarify = N` in its plan
            asks questions with `uok clarify ask`; each is a bus message to the operator (or --to
            another agent) and a ClarifyAsked event. A question past the limit is refused (exit 2,
            the limit named) and recorded as ClarifyRefused. Rounds are counted from the log, so
            a kill -9 and a restart forget none. Answer with `uok clarify answer`.
        """,
        examples="""
            uok clarify ask "Which database should the service use?"      # inside the task
            uok clarify ask "Postgres or SQLite?" --wait 600 --json
            uok clarify answer build "PostgreSQL 16" --plan demo
        """,
    )
    actions = add_actions(p, "clarify_command")
    a = add_action(
        actions,
        "ask",
        help="ask a question (one round); refused past the task's limit",
        description="""
            Record round N of the task's clarify rounds and send QUESTION on the bus to the
            operator (or --to AGENT). Inside a task the plan, unit, run and turn come from its
            environment ($UOK_PLAN_ID, $UOK_UNIT_ID, $UOK_RUN_ID, $UOK_TURN_ID). With --wait,
            wait up to SECONDS for the answer (a bus message to the task, topic clarify) and
            print it. Exit 2 if the task has used all its rounds.
        """,
        examples="""
            uok clarify ask "Which database?"
            uok clarify ask "Which database?" --to architect --wait 300 --json
        """,
    )
    a.add_argument("question", metavar="QUESTION")
    a.add_argument("--to", default="operator", metavar="AGENT", help="who is asked (default operator)")
    a.add_argument("--plan", metavar="ID", help="the plan (default $UOK_PLAN_ID)")
    a.add_argument("--unit", metavar="ID", help="the asking unit (default $UOK_UNIT_ID)")
    a.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the answer and print it")
    a.add_argument("--json", action="store_true", help="one JSON object: round, limit, message_id, agent, answer")
    a.set_defaults(func=ask)

    r = add_action(
        actions,
        "answer",
        help="answer a task's question",
        description="""
            Send ANSWER to the task UNIT of plan --plan on the bus (topic clarify), where its
            `uok clarify ask --wait` picks it up.
        """,
        examples="""
            uok clarify answer build "PostgreSQL 16" --plan demo
        """,
    )
    r.add_argument("unit", metavar="UNIT")
    r.add_argument("answer", metavar="ANSWER")
    r.add_argument("--plan", required=True, metavar="ID", help="the task's plan")
    r.add_argument("--from", dest="sender", default="operator", metavar="AGENT", help="who answers")
    r.set_defaults(func=answer)


def _where(args: argparse.Namespace) -> tuple[str, str]:
    plan = args.plan or os.environ.get("UOK_PLAN_ID", "")
    unit = args.unit or os.environ.get("UOK_UNIT_ID", "")
    if not plan or not unit:
        raise InputError("uok clarify ask needs --plan and --unit outside a task")
    return plan, unit


def ask(args: argparse.Namespace) -> int:
    from uok.adapters.bus import MessageBus
    from uok.adapters.clarify import TOPIC, ClarifyRounds

    plan, unit = _where(args)
    log = open_log(args)
    try:
        run_id, turn_id = os.environ.get("UOK_RUN_ID", ""), os.environ.get("UOK_TURN_ID", "")
        rounds = ClarifyRounds(log)
        # answers sent before this question are not its answer: read from the head on
        cursor = (
            MessageBus(log).subscribe(f"{plan}:{unit}", after=log.store.head()[0]) if args.wait is not None else None
        )
        got = rounds.ask(plan, unit, args.question, to=args.to, run_id=run_id, turn_id=turn_id)
        answer = None
        if cursor is not None:
            try:
                for m in cursor.wait(timeout=args.wait):
                    if m.topic == TOPIC:
                        answer = m.payload.get("answer", m.payload)
                        break
            finally:
                cursor.close()
    finally:
        log.store.close()
    result = {
        "round": got.round,
        "limit": got.limit,
        "message_id": got.message_id,
        "agent": got.agent,
        "answer": answer,
    }
    if args.json:
        emit(result)
    else:
        print(f"round {got.round} of {got.limit} asked ({got.message_id})")
        if answer is not None:
            print(answer)
    return 0 if args.wait is None or answer is not None else 1


def answer(args: argparse.Namespace) -> int:
    from uok.adapters.bus import MessageBus
    from uok.adapters.clarify import TOPIC, agent_of

    log = open_log(args)
    try:
        message_id = MessageBus(log).send(args.sender, agent_of(args.plan, args.unit), TOPIC, {"answer": args.answer})
    finally:
        log.store.close()
    print(message_id)
    return 0
