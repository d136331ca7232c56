from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TIERS = ("unit", "integration", "e2e", "reliability")

# pytest caches the test modules it rewrites (assertion rewriting) in
# ``__pycache__``, unless bytecode writing is off: then each pytest process,
# and each xdist worker, rewrote every test module and every module of the
# plugins it imports after this point (hypothesis: 73) again, ~4 CPU-s a
# process for the whole suite (`--collect-only`: 6.5 CPU-s with no cache,
# 2.2 with it). The machine's environment sets PYTHONDONTWRITEBYTECODE=1;
# this process writes its (git-ignored) caches all the same, the processes
# the tests start still see the variable (see _byte_compile_the_package).
sys.dont_write_bytecode = False


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis without wall-clock limits; uok's sources byte-compiled."""
    _hypothesis_without_wall_clock_limits()
    _byte_compile_the_package(config)


def _hypothesis_without_wall_clock_limits() -> None:
    """A property holds or not whatever the machine's load: Hypothesis's
    per-example deadline (200 ms) and its too-slow health check measure the
    machine, and under a busy core they failed tests whose property held
    (``test_to_toml_round_trips_through_tomllib``: 456 ms on a first call,
    0.18 ms on the next, at load 9). A test's own ``@settings`` still win."""
    from hypothesis import HealthCheck, settings

    settings.register_profile("uok", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("uok")


def _byte_compile_the_package(config: pytest.Config) -> None:
    """Byte-compile uok's sources once, before any test starts a process.

    The suite starts ``uok`` (and Python tasks importing it) thousands of
    times. Where ``PYTHONDONTWRITEBYTECODE`` is set (as on the CI machine),
    no process writes the ``__pycache__`` of the source tree, so every one of
    them compiled each module it imported again: ~330M of the ~750M
    instructions of a ``uok status``, ~930M of ~1,500M of a ``uok run``, on a
    clean clone. compileall writes the (git-ignored) ``.pyc`` files up front,
    as ``pip install`` does for site-packages; a module already compiled is
    skipped. The xdist controller does it, before the workers start."""
    if hasattr(config, "workerinput"):
        return
    import compileall
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    for folder in sorted(set(setup["package-dir"].values())):
        compileall.compile_dir(ROOT / folder, quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test carries the marker of its tier, from the folder it lives
    in (tests/unit, tests/integration, tests/e2e, tests/reliability), so
    `-m unit` or `-m "not reliability"` select by tier with nothing to
    remember in each file.

    The tiers run slowest first (reliability, e2e, integration, unit), in
    their files' order within a tier: under xdist (`--dist worksteal`,
    pyproject's addopts) the long tests (the fifty kills, the 10,000-task
    plan: 20-70 s each) start early and the unit tests (milliseconds) fill
    the end, instead of a worker finishing a minute-long test alone while
    the other waits (a 38 s tail at load 6 in alphabetical order)."""
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(tier)
    slowest_first = {tier: rank for rank, tier in enumerate(reversed(TIERS))}
    items.sort(key=lambda item: slowest_first.get(item.path.parent.name, len(TIERS)))


def uok(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (``python -m uok.adapters.cli.main``)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("UOK_DB", None) if env is None or "UOK_DB" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "uok", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(stdout: str) -> list:
    """A ``--json`` listing: one JSON object per line (docs/cli.md, "JSON output")."""
    import orjson

    return [orjson.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def demo_plan(tmp_path: Path) -> Path:
    """A private copy of the demo plan (its tasks write under out/ beside it)."""
    dst = tmp_path / "plan"
    shutil.copytree(FIXTURES / "plans", dst, ignore=shutil.ignore_patterns("out", "bad"))
    return dst / "demo.toml"


@pytest.fixture(scope="session")
def pg_server():
    """This session's own PostgreSQL database (created on first use, dropped at the end)."""
    from tests.stores import PgServer

    server = PgServer()
    yield server
    server.drop()


@pytest.fixture(params=["apsw", "postgres"])
def logs(request, tmp_path: Path):
    """Log targets on one store kind: the test runs once per store (tests/stores.py)."""
    from tests.stores import Logs

    server = request.getfixturevalue("pg_server") if request.param == "postgres" else None
    return Logs(request.param, tmp_path, server)


@pytest.fixture(scope="module", params=["apsw", "postgres"])
def module_logs(request, tmp_path_factory):
    """``logs`` for module-scoped fixtures (logs shared by a module's tests)."""
    from tests.stores import Logs

    server = request.getfixturevalue("pg_server") if request.param == "postgres" else None
    return Logs(request.param, tmp_path_factory.mktemp(request.param), server)
