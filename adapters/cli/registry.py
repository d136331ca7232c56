"""Which sub-commands exist, where each lives, and its one-line summary.

The summaries are here, not in the command modules, so that ``uok --help``
(and a mistyped command) is answered without importing any of them: a
command's module, and whatever heavy library it needs, is imported only
when that command runs or its own ``--help`` is asked for.

To add a command: write ``uok/adapters/cli/commands/<name>.py`` with a
``register(sub)`` that calls :func:`uok.adapters.cli.framework.add_command`,
and add one line below. ``tests/e2e/test_cli.py`` checks every entry (it has
examples in its ``--help``, its module imports nothing heavy) and
``docs/cli.md`` is regenerated from the parser (``uok cli-reference``).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import NamedTuple

_PACKAGE = "uok.adapters.cli.commands"


class CommandInfo(NamedTuple):
    """One command: a NamedTuple, not a dataclass (dataclasses imports
    inspect, which ``uok --help`` has no other use for)."""

    module: str  # the module under uok.adapters.cli.commands
    summary: str  # the line `uok --help` shows
    hidden: bool = False  # maintenance commands, left out of `uok --help`

    def load(self) -> ModuleType:
        name = f"{_PACKAGE}.{self.module}"
        __import__(name)  # not importlib.import_module: `python -X importtime` reports only this path
        return sys.modules[name]


COMMANDS: dict[str, CommandInfo] = {
    "run": CommandInfo("run", "run a plan (TOML) through the kernel"),
    "worker": CommandInfo("worker", "run units of a shared run (uok run --claims) from this host, through the log"),
    "progress": CommandInfo("progress", "from inside a task: report how far it has got (the unit enters progress)"),
    "retry": CommandInfo("retry", "run a plan again, re-queueing failed, blocked or named units"),
    "plan": CommandInfo("plan", "check a plan, print its compiled graph (text, JSON, DOT, Mermaid)"),
    "clarify": CommandInfo("clarify", "a task's question/answer rounds over the bus, limited per task"),
    "status": CommandInfo("status", "runs and units by state"),
    "events": CommandInfo("events", "print the event log"),
    "logs": CommandInfo("logs", "a task's kept output (stdout, stderr) by unit, run or turn; --follow"),
    "verify": CommandInfo("verify", "deep integrity check: SQLite integrity_check and the hash chain"),
    "breakers": CommandInfo("breakers", "circuit breaker of every gate"),
    "bus": CommandInfo("bus", "durable messages between agents"),
    "steer": CommandInfo("steer", "pause, resume, cancel a unit of, or annotate a running run"),
    "writer": CommandInfo("writer", "writer tokens: sequence, held tokens, expiry"),
    "projections": CommandInfo("projections", "read models: positions, lag, rebuild"),
    "state": CommandInfo("state", "time travel: units, runs, turns, breakers and costs as of a position"),
    "diff": CommandInfo("diff", "what changed between two positions, or between two logs"),
    "parity": CommandInfo("parity", "kernel enter/exit parity: matched, in progress, orphaned, historical mismatches"),
    "replay": CommandInfo("replay", "re-drive the kernel over a recorded run; report the first divergence"),
    "fork": CommandInfo("fork", "copy a run's history up to a position into a new log"),
    "copy": CommandInfo("copy", "copy a whole log between stores (SQLite <-> PostgreSQL), positions and hashes kept"),
    "sql": CommandInfo("sql", "query the event history with SQL (DuckDB, read-only)"),
    "export": CommandInfo("export", "audit export (jsonl/parquet/csv) with hashes and a manifest"),
    "metrics": CommandInfo("metrics", "print Prometheus metrics (gates, breakers, units, turns, costs, bus, lag)"),
    "serve": CommandInfo("serve", "serve /metrics over HTTP for Prometheus"),
    "doctor": CommandInfo(
        "doctor", "diagnose the installation: healthy / running / quiet-but-healthy / degraded / needs-repair"
    ),
    "ui": CommandInfo("ui", "local read-only web view: runs, timeline, unit graph, time travel, live updates"),
    "intent": CommandInfo("intent", "from inside a task: declare more read/write intents, granted or refused"),
    "eval": CommandInfo("eval", "evals: run cases x variants x repetitions, rank variants with confidence intervals"),
    "report": CommandInfo("report", "one run as a self-contained HTML file (timeline, unit graph, every unit)"),
    "trace": CommandInfo("trace", "export a run as OpenTelemetry spans (OTLP/HTTP, or OTLP/JSON to a file)"),
    "completion": CommandInfo("completion", "print a shell completion script (bash or zsh)"),
    "cli-reference": CommandInfo("cli_reference", "write docs/cli.md from the parser", hidden=True),
}
