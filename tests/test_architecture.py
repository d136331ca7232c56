"""The rules that make replay possible, checked on the source itself.

``domain/`` must be pure: it may not import the adapters, projections or
replay packages, nor any module that reads a clock, a random source, the
environment, the file system or the network. Replay depends on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = sorted((ROOT / "domain").rglob("*.py"))

FORBIDDEN_PACKAGES = {"adapters", "projections", "replay"}
IMPURE_MODULES = {
    "os",
    "sys",
    "time",
    "random",
    "secrets",
    "uuid",
    "socket",
    "subprocess",
    "threading",
    "pathlib",
    "shutil",
    "tempfile",
    "io",
    "signal",
    "sqlite3",
    "apsw",
    "duckdb",
    "requests",
    "urllib",
    "http",
    "asyncio",
    "multiprocessing",
    "logging",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pathlib" and all(a.name.startswith("Pure") for a in node.names):
                continue  # PurePath and friends do no I/O
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_depends_on_nothing_outside_it(path: Path):
    roots = {name.split(".")[0] for name in imported_modules(path)}
    assert not roots & FORBIDDEN_PACKAGES, f"{path.name} imports {roots & FORBIDDEN_PACKAGES}"
    assert not roots & IMPURE_MODULES, f"{path.name} imports impure modules {roots & IMPURE_MODULES}"


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_reads_no_clock(path: Path):
    source = path.read_text()
    for call in ("datetime.now(", "datetime.utcnow(", "date.today(", ".now()"):
        assert call not in source, f"{path.name} reads the clock ({call})"


def test_every_event_class_is_known_to_the_codec():
    from uok.domain.events import Event
    from uok.domain.log import codec

    codec.event_class("KernelEntered")  # builds the registry

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    for cls in walk(Event):
        assert codec.event_class(cls.__name__) is cls


def test_every_execution_outcome_field_is_an_execution_finished_field():
    """The runner builds ExecutionFinished(**outcome): the shapes must agree."""
    import msgspec
    from uok.adapters.executor import ExecutionOutcome
    from uok.domain.events import ExecutionFinished

    outcome = {f.name: f.type for f in msgspec.structs.fields(ExecutionOutcome)}
    event = {f.name: f.type for f in msgspec.structs.fields(ExecutionFinished)}
    assert outcome.items() <= event.items()


def test_every_package_folder_is_listed_in_pyproject():
    """setuptools installs exactly the packages pyproject lists: a sub-package
    folder missing from the list would be left out of the wheel."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = set()
    for name, folder in setup["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), "package folders missing from [tool.setuptools] packages"
    assert listed - found == set(), "listed packages with no folder"
