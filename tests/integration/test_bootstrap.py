"""One composition root (uok.bootstrap) and one store factory
(uok.adapters.stores): the runner receives its collaborators built, and no
other module turns a log path into a store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from uok.adapters import runner as runner_module
from uok.adapters.stores import find_log, locate_log, open_event_store

import uok
from tests.conftest import ROOT
from uok import bootstrap
from uok.errors import InputError


def _calls(path: Path) -> set[str]:
    """Names called anywhere in a module (``f(...)``, ``x.f(...)``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_runner_builds_none_of_its_collaborators():
    built = {"setup_gates", "build_turn_hooks", "SteeringPoller", "CommandExecutor", "ChaosMonkey", "for_runner"}
    assert _calls(Path(runner_module.__file__)) & built == set()
    assert {"build_turn_hooks", "SteeringPoller", "CommandExecutor", "ChaosMonkey", "setup_gates"} <= _calls(
        ROOT / "uok" / "bootstrap.py"
    )


def test_only_the_store_factory_opens_a_log_file():
    openers = []
    for path in [*(ROOT / "adapters").rglob("*.py"), *(ROOT / "uok").rglob("*.py")]:
        if path.name in ("stores.py", "sqlite_store.py", "es_apsw.py"):  # the factory; the class; the library's factory
            continue
        if "SqliteEventStore" in _calls(path):
            openers.append(str(path.relative_to(ROOT)))
    assert openers == []


def test_doctor_does_not_import_the_cli():
    assert not any(m.startswith("uok.adapters.cli") for m in _imports(ROOT / "adapters" / "doctor.py"))


def test_bad_input_is_refused_before_the_log_is_touched(tmp_path: Path, demo_plan: Path):
    (demo_plan.parent / "uok.toml").write_text('[uok.chaos]\nenabled = true\nrate = "often"\n')
    db = tmp_path / "never.db"
    with pytest.raises(InputError):
        bootstrap.prepare_run(demo_plan)
    with pytest.raises(InputError):
        uok.run_plan(demo_plan, db=db)
    assert not db.exists()


def test_build_runner_runs_a_plan_on_an_open_log(tmp_path: Path, demo_plan: Path):
    log = bootstrap.open_log(tmp_path / "b.db", create=True)
    try:
        runner = bootstrap.build_runner(log, demo_plan, workers=2, run_id="r-built")
        assert runner.run_id == "r-built" and runner.loop.kernel is runner.kernel
        result = runner.run()
    finally:
        log.store.close()
    assert (result.status, result.units_completed, result.exit_code) == ("ok", 12, 0)
    assert bootstrap.status(tmp_path / "b.db")["runs"][0]["run_id"] == "r-built"


def test_the_factory_refuses_what_is_not_a_log(tmp_path: Path):
    with pytest.raises(InputError, match="no event log"):
        open_event_store(tmp_path / "missing.db")
    with pytest.raises(InputError, match="is a directory"):
        open_event_store(tmp_path)
    with pytest.raises(InputError, match="unsupported event log URL"):
        open_event_store("mysql://localhost/uok")
    with pytest.raises(InputError, match="empty"):
        locate_log("")


def test_locate_log_order(tmp_path: Path):
    project = tmp_path / "p"
    (project / ".uok").mkdir(parents=True)
    (project / ".uok" / "events.db").write_bytes(b"")
    sub = project / "a" / "b"
    sub.mkdir(parents=True)
    env = {"UOK_CEILING_DIRECTORIES": str(tmp_path)}
    assert locate_log("x.db", environ={**env, "UOK_DB": "y.db"}, cwd=sub) == Path("x.db")
    assert locate_log(None, environ={**env, "UOK_DB": "y.db"}, cwd=sub) == Path("y.db")
    assert locate_log(None, environ=env, cwd=sub) == (project / ".uok" / "events.db").resolve()
    assert find_log(tmp_path, env) is None
    ceiling = {"UOK_CEILING_DIRECTORIES": str(project / "a")}
    assert find_log(sub, ceiling) is None  # the search stops at a ceiling
    assert locate_log(None, environ=ceiling, cwd=sub) == sub / ".uok" / "events.db"  # created there by a writer
