"""``uok logs RUN|TURN|UNIT``: the kept output of a task's turns."""

from __future__ import annotations

import argparse
import sys
import time

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit_lines

from uok.errors import IntegrityFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "logs",
        description="""
            Print the output a task printed, as kept: every turn's stdout and stderr are
            streamed to files beside the log (.uok/logs/RUN/UNIT.N.stdout and .stderr, see
            docs/tasks.md), redacted as they are written, and their size and SHA-256 are
            recorded in the turn's ExecutionFinished event.

            WHAT is a unit id (its latest attempt; --attempt N for another), a run id (every
            turn of that run, each line prefixed with its unit) or a turn id. A finished
            turn's file is checked against the recorded size and SHA-256 as it is printed:
            a file that differs is an integrity failure (exit 3).

            --follow keeps printing as the task writes, until the turn (or the run) ends.

            --transcript prints an agent task's turns as their recorded steps instead
            (messages, tool calls and results, usage, the result; docs/agents.md); with
            --follow, as the agent streams them.
        """,
        examples="""
            uok logs build                      # the latest attempt of unit 'build'
            uok logs build --attempt 1 --stderr # the first attempt's stderr
            uok logs build --follow             # as it runs
            uok logs r20260101120000-abc123     # every turn of a run
            uok logs build --json               # where the files are, their sizes and hashes
            uok logs fix --transcript           # an agent's turn, step by step
            uok logs fix --transcript --follow  # ... as it runs
        """,
    )
    p.add_argument("what", metavar="WHAT", help="a unit id, a run id or a turn id")
    p.add_argument("--attempt", type=int, metavar="N", help="the unit's attempt N (default: its latest)")
    p.add_argument("--stderr", action="store_true", help="stderr instead of stdout")
    p.add_argument("--plan", metavar="ID", help="the plan of the unit, when several plans have one of that id")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the turn (or run) ends")
    p.add_argument("--transcript", action="store_true", help="an agent task's turns as their recorded steps")
    p.add_argument(
        "--json",
        action="store_true",
        help="no output, one object per turn: run_id, plan_id, unit_id, turn_id, attempt, stream, path, "
        "size, sha256 (null until the turn ends), finished",
    )
    p.set_defaults(func=logs)


def logs(args: argparse.Namespace) -> int:
    from uok.adapters.turnlogs import LogsDir
    from uok.adapters.turnoutput import select, turns

    from uok.errors import InputError

    if args.attempt is not None and args.attempt < 1:
        raise InputError(f"--attempt must be >= 1, got {args.attempt}")
    log = open_log(args, readonly=True)
    try:
        where = LogsDir.for_store(log.store)
        chosen = select(turns(log, where), args.what, attempt=args.attempt, plan=args.plan)
        if args.json:
            emit_lines(_meta(t, args.stderr) for t in chosen)
            return 0
        if args.transcript:
            _transcript(log, where, chosen, follow=args.follow)
            return 0
        run_mode = len({t.run_id for t in chosen}) == 1 and chosen[0].run_id == args.what
        follower = _Follower(log, where, chosen, stderr=args.stderr, prefix=run_mode)
        follower.drain()
        if args.follow:
            follower.follow(run_id=args.what if run_mode else None)
        follower.finish()
    finally:
        log.store.close()
    return 0


def _transcript(log, where, chosen, *, follow: bool) -> None:
    """An agent task's turns as their steps; with ``follow``, as they are
    recorded, until every chosen turn has finished."""
    from uok.adapters.agents.transcript import Transcript
    from uok.adapters.turnoutput import turns

    printer = Transcript(log, where.blobs, chosen)
    wanted = {t.turn_id for t in chosen}
    while True:
        for line in printer.new_lines():
            print(line, flush=True)
        if not follow or all(t.finished for t in turns(log, where) if t.turn_id in wanted):
            break
        time.sleep(0.2)
    for line in printer.new_lines():  # what landed while the last turn finished
        print(line, flush=True)
    if not follow:
        for line in printer.empty_turns():
            print(line)


def _meta(t, stderr: bool) -> dict:
    path, recorded = t.stream(stderr)
    return {
        "run_id": t.run_id,
        "plan_id": t.plan_id,
        "unit_id": t.unit_id,
        "turn_id": t.turn_id,
        "attempt": t.attempt,
        "stream": "stderr" if stderr else "stdout",
        "path": str(path),
        "size": recorded.size if recorded else None,
        "sha256": recorded.sha256 if recorded else None,
        "finished": t.finished,
    }


class _Follower:
    """Prints turns' files as they grow; checks each finished one against its event."""

    def __init__(self, log, where, chosen, *, stderr: bool, prefix: bool):
        self.log, self.where, self.stderr, self.prefix = log, where, stderr, prefix
        self.out = sys.stdout.buffer
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        self.hashes: dict[str, object] = {}
        self.turns = {t.turn_id: t for t in chosen}

    def drain(self) -> None:
        for t in list(self.turns.values()):
            self._copy(t)

    def follow(self, run_id: str | None) -> None:
        from uok.adapters.turnoutput import turns

        while True:
            current = {t.turn_id: t for t in turns(self.log, self.where)}
            for turn_id, t in current.items():
                if turn_id in self.turns or (run_id is not None and t.run_id == run_id):
                    self.turns[turn_id] = t
            self.drain()
            self.out.flush()  # a pipe reader (`uok logs -f | grep`) sees lines as they come
            if all(t.finished for t in self.turns.values()) and (run_id is None or self._run_ended(run_id)):
                self.drain()
                return
            time.sleep(0.2)

    def finish(self) -> None:
        problems = []
        for turn_id, t in self.turns.items():
            rest = self.partial.pop(turn_id, b"")
            if rest:
                self._write(t, rest)
            problems.extend(self._check(t))
        self.out.flush()
        if problems:
            raise IntegrityFailure("; ".join(problems))

    def _run_ended(self, run_id: str) -> bool:
        from uok.domain import events as ev
        from uok.domain.log import codec

        topic = codec.topic_of(ev.KernelExited)
        return any(codec.decode(r.topic, r.payload).run_id == run_id for r in self.log.store.read(0, topics=(topic,)))

    def _copy(self, t) -> None:
        import hashlib

        from uok.adapters.turnoutput import read_chunks

        path, _ = t.stream(self.stderr)
        start = self.offsets.get(t.turn_id, 0)
        h = self.hashes.setdefault(t.turn_id, hashlib.sha256())
        try:
            for chunk in read_chunks(path, start):
                h.update(chunk)  # type: ignore[attr-defined]
                start += len(chunk)
                self._write(t, chunk)
        except FileNotFoundError:
            return
        self.offsets[t.turn_id] = start

    def _write(self, t, chunk: bytes) -> None:
        if not self.prefix:
            self.out.write(chunk)
            return
        data = self.partial.pop(t.turn_id, b"") + chunk
        end = data.rfind(b"\n") + 1
        head = f"{t.unit_id}#{t.attempt} | ".encode()
        for line in data[:end].splitlines(keepends=True):
            self.out.write(head + line)
        if end < len(data):
            self.partial[t.turn_id] = data[end:]

    def _check(self, t) -> list[str]:
        path, recorded = t.stream(self.stderr)
        if recorded is None or not t.finished:
            return []
        if self.offsets.get(t.turn_id) != recorded.size:
            from uok.adapters.turnoutput import verify

            problem = verify(path, recorded)
            return [problem] if problem else []
        digest = self.hashes[t.turn_id].hexdigest()  # type: ignore[attr-defined]
        if digest != recorded.sha256:
            return [f"{path}: SHA-256 {digest} differs from the recorded {recorded.sha256}"]
        return []
