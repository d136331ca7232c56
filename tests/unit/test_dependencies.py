"""What CI installs is pinned, what pyproject.toml promises is tested, and
the base install stays light: the README's test command is .ci/run's,
constraints.txt pins every direct dependency inside its declared range, a
nox session runs the floors, and pyarrow is neither required nor imported."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent.parent
COMMAND = re.compile(r"python3 -m venv \.venv && \.venv/bin/pip install .* && \.venv/bin/pytest -q")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_the_readme_test_command_is_what_ci_runs():
    readme = COMMAND.findall((ROOT / "README.md").read_text())
    ci = COMMAND.findall((ROOT / ".ci" / "run").read_text())
    assert len(ci) == 1 and ci[0] in readme
    assert "-c constraints.txt" in ci[0]


def test_constraints_pin_every_direct_dependency_inside_its_range():
    project, pins = _project(), _pins()
    direct = [*project["dependencies"]]
    for reqs in project["optional-dependencies"].values():
        direct += [r for r in reqs if not r.startswith("uok[")]
    for text in direct:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not pinned in constraints.txt (run `nox -s lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"


def test_a_nox_session_runs_the_lowest_direct_versions():
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    sessions = {
        f.name: ast.unparse(f)
        for f in tree.body
        if isinstance(f, ast.FunctionDef) and any("nox.session" in ast.unparse(d) for d in f.decorator_list)
    }
    assert "lowest" in sessions and "lowest-direct" in sessions["lowest"] and "pytest" in sessions["lowest"]
    assert "lock" in sessions


def test_pyarrow_is_not_in_the_base_install_nor_imported():
    assert not any(Requirement(r).name == "pyarrow" for r in _project()["dependencies"])
    importers = []
    for folder in ("uok", "domain", "adapters", "projections", "replay"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(n.split(".")[0] == "pyarrow" for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert importers == []
