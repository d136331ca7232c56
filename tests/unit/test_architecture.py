"""The rules that make replay possible, checked on the source itself.

``domain/`` must be pure: it may not import the adapters, projections or
replay packages, nor any module that reads a clock, a random source, the
environment, the file system or the network. Replay depends on it.

The kernel is one object: its rules (``domain/kernel/rules/``) work through
the public decision context and state, never a private name; no module
inside ``domain/`` takes part in an import cycle (type-only and
function-level imports count); and code outside ``domain/kernel/`` imports
only what ``uok.domain.kernel`` exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    data_only = set(setup["package-data"])  # the web view's templates and assets: folders of data, no code
    assert listed - found - data_only == set(), "listed packages with no folder"
    for name in data_only:
        root = max((n for n in setup["package-dir"] if name.startswith(n + ".")), key=len)
        folder = ROOT / setup["package-dir"][root] / Path(*name[len(root) + 1 :].split("."))
        assert folder.is_dir() and not (folder / "__init__.py").exists(), f"{name}: not a data-only folder"


# --------------------------------------------------------------------------- the kernel's shape

KERNEL = ROOT / "domain" / "kernel"
RULE_MODULES = sorted((KERNEL / "rules").glob("*.py"))


def module_name(path: Path) -> str:
    """The dotted name ``path`` installs as (``domain/x/y.py`` -> ``uok.domain.x.y``)."""
    parts = ["uok", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


DOMAIN_MODULES = {module_name(p): p for p in DOMAIN}


def imports_of(path: Path) -> list[tuple[str, str]]:
    """Every (module, name) an import statement anywhere in ``path`` names:
    top level, inside functions and under ``if TYPE_CHECKING`` alike.
    ``import a.b`` gives (a.b, ""); ``from a import b`` gives (a, b)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out += [(base, alias.name) for alias in node.names]
    return out


def domain_edges(path: Path) -> set[str]:
    """The ``domain`` modules ``path`` imports (a name that is a sub-module counts as that module)."""
    edges = set()
    for module, name in imports_of(path):
        target = f"{module}.{name}" if f"{module}.{name}" in DOMAIN_MODULES else module
        if target in DOMAIN_MODULES:
            edges.add(target)
    return edges


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_inside_the_domain():
    """Parent packages are not edges (``a.b.c`` loading ``a.b`` first is
    how Python imports, not a dependency); everything else is, including
    imports only made for type checking."""
    graph = {name: domain_edges(path) for name, path in DOMAIN_MODULES.items()}
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"a"}}) == [["a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def private_uses(path: Path) -> list[str]:
    """``x._name`` attribute uses and ``getattr(x, "_name")`` calls (dunders are fine)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
        ):
            name = str(node.args[1].value)
        if name and name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            found.append((node.lineno, name))
    return [f"line {line}: {name}" for line, name in sorted(found)]


@pytest.mark.parametrize("path", RULE_MODULES, ids=lambda p: p.name)
def test_a_rule_uses_the_public_context_and_state_only(path: Path):
    """Rules take the decision context or the state: never the kernel object,
    never a private method or attribute of anything (the context, the state,
    another rule module)."""
    assert private_uses(path) == [], f"{path.name} uses private names"
    kernel_object = {m for m, _ in imports_of(path) if m == "uok.domain.kernel.kernel"}
    kernel_object |= {n for m, n in imports_of(path) if m == "uok.domain.kernel" and n == "Kernel"}
    assert not kernel_object, f"{path.name} imports the kernel object"


def test_the_private_use_finder_finds_them(tmp_path: Path):
    bad = tmp_path / "rule.py"
    bad.write_text("def on_x(ctx, obs):\n    ctx._fold(obs)\n    getattr(ctx.state, '_at')\n    ctx.__class__\n")
    assert private_uses(bad) == ["line 2: _fold", "line 3: _at"]


# The project's own code (not whatever sits in the checkout: .venv, .nox's
# environments, build/ hold thousands of other modules).
SOURCE_FOLDERS = ("uok", "domain", "adapters", "projections", "replay", "tests", "bench", "fixtures")
OUTSIDE_THE_KERNEL = sorted(
    p
    for p in [*ROOT.glob("*.py"), *(q for folder in SOURCE_FOLDERS for q in (ROOT / folder).rglob("*.py"))]
    if not p.is_relative_to(KERNEL) and p != Path(__file__).resolve()
)


def test_nothing_outside_the_kernel_imports_its_internals():
    """``uok.domain.kernel`` exports the kernel; its state, context and rule
    modules are internals that other code must not reach into."""
    import uok.domain.kernel

    public = set(uok.domain.kernel.__all__)
    offenders = []
    for path in OUTSIDE_THE_KERNEL:
        for module, name in imports_of(path):
            inside = module.startswith("uok.domain.kernel.")
            private_name = module == "uok.domain.kernel" and name and name not in public
            if inside or private_name:
                offenders.append(f"{path.relative_to(ROOT)}: {module} {name}".strip())
    assert offenders == []


def test_every_observation_has_exactly_one_handler_and_every_handler_takes_an_observation():
    from uok.domain.events import Event
    from uok.domain.kernel.kernel import RULES, Handle

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    handled = [r.event for r in RULES if isinstance(r, Handle)]
    observations = {cls for cls in walk(Event) if cls.OBSERVED}
    assert sorted(c.__name__ for c in handled) == sorted(c.__name__ for c in observations)


def test_every_module_of_the_package_imports():
    """A module nothing imports yet (a new projection, a command) must still
    import: a stale import path fails here, not in a user's hands."""
    import importlib
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = []
    for name, folder in setup["package-dir"].items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            if rel.name != "__main__":  # runs the CLI
                names.append(".".join([name, *(rel.parts[:-1] if rel.name == "__init__" else rel.parts)]))
    for name in names:
        importlib.import_module(name)
    assert "uok.domain.kernel.rules.dispatch" in names
