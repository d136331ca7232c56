"""The CLI's cold start stays light: each common command imports what it
needs and nothing heavier (e2e tests start ``uok`` processes thousands of
times, so every import is paid thousands of times; bench/cold_start.py
measures it, docs/reliability.md "The suite under load" has the figures).

What a process imported is read from its own ``-X importtime`` output; each
test also names a module the command must import, so an empty or broken
measurement cannot pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Packages no reading command and no quiet run of a plain plan needs.
HEAVY = (
    "duckdb",
    "pyarrow",
    "nanoarrow",
    "detect_secrets",
    "requests",
    "rich",
    "prometheus_client",
    "psycopg",
    "psycopg_pool",
    "starlette",
    "uvicorn",
    "jinja2",
    "opentelemetry",
    "hypothesis",
    "yaml",
    "eventsourcing",  # only uok.adapters.es_apsw, the library's persistence module, needs it
)

# One task; no word of it looks like a secret, so redacting it needs no detect-secrets.
PLAN = """\
[plan]
id = "one"

[[milestones]]
id = "M"

[[milestones.slices]]
id = "S"

[[milestones.slices.tasks]]
id = "t"
command = ["true"]
"""


def imported_modules(*args: str, cwd: Path = ROOT) -> set[str]:
    """Modules a ``python -X importtime -m uok ARGS`` process imported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("UOK_DB", None)
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "uok", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    assert lines, "no -X importtime output"
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def log(plan: Path) -> Path:
    """A log holding one finished run of the plan."""
    db = plan.parent / "events.db"
    mods = imported_modules("run", str(plan), "--db", str(db), "--quiet", cwd=plan.parent)
    assert "uok.adapters.runner" in mods
    return db


def test_help_imports_no_command_and_nothing_heavy():
    mods = imported_modules("--help")
    assert "uok.adapters.cli.framework" in mods  # the measurement saw our own imports
    commands = sorted(m for m in mods if m.startswith("uok.adapters.cli.commands."))
    assert commands == []
    assert heavy(mods) == []
    assert sorted(m for m in mods if m.split(".")[0] in ("apsw", "msgspec", "orjson")) == []


@pytest.mark.parametrize("command", ["status", "events", "verify", "state"])
def test_a_reading_command_imports_nothing_heavy(tmp_path: Path, log: Path, command: str):
    mods = imported_modules(command, "--db", str(log), cwd=tmp_path)
    assert f"uok.adapters.cli.commands.{command}" in mods and "apsw" in mods  # it did open the log
    assert heavy(mods) == []
    others = sorted(m for m in mods if m.startswith("uok.adapters.cli.commands.") and not m.endswith(f".{command}"))
    assert others == []


def test_a_quiet_run_of_a_plain_plan_imports_neither_rich_nor_detect_secrets(tmp_path: Path, plan: Path):
    """``--quiet`` prints plain lines (no rich); a plan and an output with
    nothing that looks like a secret are redacted without detect-secrets."""
    mods = imported_modules("run", str(plan), "--db", str(tmp_path / "events.db"), "--quiet", cwd=tmp_path)
    assert "uok.adapters.runner" in mods and "uok.adapters.secrets" in mods  # it ran, and redacted
    assert heavy(mods) == []


def test_the_live_view_and_a_secret_looking_plan_do_import_them(tmp_path: Path):
    """The other side: a run drawing its progress imports rich, and a plan
    with a word that could name a secret is scanned by detect-secrets."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('command = ["true"]', 'command = ["true", "token"]'), encoding="utf-8")
    mods = imported_modules("run", str(plan), "--db", str(tmp_path / "events.db"), cwd=tmp_path)
    assert {"rich", "detect_secrets"} <= {m.split(".")[0] for m in mods}


def test_only_the_library_adapter_imports_eventsourcing():
    """The stores raise uok's PEP 249 errors (uok.domain.log.errors); the
    eventsourcing library is imported by the module that serves it alone."""
    import ast

    importers = []
    for folder in ("adapters", "domain", "projections", "replay", "uok"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(n.split(".")[0] == "eventsourcing" for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["adapters/es_apsw.py"]
