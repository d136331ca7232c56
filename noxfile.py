"""Sessions for developers and CI: ``nox -l`` lists them, ``nox -s NAME`` runs one.

Each session builds its own virtual environment (with uv when it is on the
path or installed beside nox: the ``dev`` extra brings both). To add a
session, write a function below decorated with ``@nox.session``; install
the project with :func:`install` so every session honours the same
constraints. ``nox`` alone runs ``lint``, ``typecheck`` and ``fast``.

* ``fast``: the unit tier (tests/unit): pure, well under 30 s.
* ``test``: every tier: unit, integration, e2e, reliability.
* ``reliability``: the torture tests, printing their figures.
* ``lint``: ``ruff check`` and ``ruff format --check``.
* ``typecheck``: mypy over the whole package (uok.domain strict).
* ``lowest``: every direct dependency at the lowest version pyproject.toml
  allows (uv's ``--resolution lowest-direct``), then the test suite. The
  floors we publish are floors we have run.
* ``lock``: rewrite ``constraints.txt``, the exact versions ``.ci/run``
  installs (``pip install -c constraints.txt``), from pyproject.toml.

``--no-venv`` runs a session in the current environment instead (after
``pip install -c constraints.txt -e '.[test,dev]'``): that is how ``.ci/run``
calls ``lint`` and ``typecheck``.
"""

from __future__ import annotations

import re
import sys
import tempfile
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "typecheck", "fast"]

ROOT = Path(__file__).resolve().parent

CONSTRAINTS = "constraints.txt"
_FREEZE = (
    "import importlib.metadata as m; print(*sorted(f'{d.name}=={d.version}' for d in m.distributions()), sep='\\n')"
)
EXTRAS = "test"


def install(session: nox.Session, *args: str, constraints: bool = True) -> None:
    """Install the project (editable, with the ``test`` extra) and ``args``
    into the session's environment, pinned by constraints.txt unless told not to."""
    if _no_venv(session):
        return  # --no-venv: the current environment has it all
    pins = ["-c", CONSTRAINTS] if constraints else []
    session.install(*pins, "-e", f".[{EXTRAS}]", *args)


def _no_venv(session: nox.Session) -> bool:
    return session.venv_backend == "none"


def _tool(session: nox.Session, module: str) -> tuple[str, ...]:
    """``python -m MODULE`` with the session's interpreter: the virtualenv's,
    or with ``--no-venv`` the one running nox (the PATH may not lead to it)."""
    return (sys.executable if _no_venv(session) else "python", "-m", module)


@nox.session
def fast(session: nox.Session) -> None:
    """The unit tier: pure and fast (domain rules, no files written, no processes)."""
    install(session)
    session.run(*_tool(session, "pytest"), "-q", "-p", "no:cacheprovider", "tests/unit", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """Every tier, as ``.ci/run`` runs it."""
    install(session)
    session.run(*_tool(session, "pytest"), "-q", "-n", "auto", *session.posargs)


@nox.session
def reliability(session: nox.Session) -> None:
    """The torture tests (kill -9, contention, disk full, corruption, fuzzing), with their figures."""
    install(session)
    session.run(*_tool(session, "pytest"), "-q", "-s", "-m", "reliability", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's lint rules and its formatter, both configured in pyproject.toml."""
    if not _no_venv(session):
        session.install("-c", CONSTRAINTS, "ruff")
    session.run(*_tool(session, "ruff"), "check", ".")
    session.run(*_tool(session, "ruff"), "format", "--check", ".")


def _package_dirs() -> dict[str, str]:
    """pyproject.toml's package-dir: import name -> folder (``uok.domain`` -> ``domain``)."""
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return mapping


def _link_tree(dest: Path) -> None:
    """The ``uok`` package as Python imports it, made of links: the files of
    the uok/ folder, and one link per folder mapped into the package."""
    package = dest / "uok"
    package.mkdir()
    for name, folder in _package_dirs().items():
        if name == "uok":
            for entry in (ROOT / folder).iterdir():
                if entry.name != "__pycache__":
                    (package / entry.name).symlink_to(entry)
            continue
        parent, _, leaf = name.rpartition(".")
        if parent != "uok":
            raise ValueError(f"package-dir maps {name}: only direct sub-packages of uok are linked")
        (package / leaf).symlink_to(ROOT / folder)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over uok, uok.domain (strict), uok.adapters, uok.projections and uok.replay.

    An editable install maps the folders into ``uok`` with an import hook,
    which mypy cannot follow, so mypy checks a tree of links laid out as the
    installed package; the paths it reports are turned back into the
    repository's (``uok/domain/...`` -> ``domain/...``)."""
    install(session, "mypy")
    back = {
        f"uok/{name.rpartition('.')[2]}/": f"{folder}/" for name, folder in _package_dirs().items() if name != "uok"
    }
    with tempfile.TemporaryDirectory(prefix="uok-typecheck-") as tmp:
        _link_tree(Path(tmp))
        with session.chdir(tmp):
            output = session.run(
                *_tool(session, "mypy"),
                "-p",
                "uok",
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                str(ROOT / ".mypy_cache"),
                silent=True,
                success_codes=[0, 1],
            )
    text = str(output or "")
    for linked, folder in back.items():
        text = re.sub(rf"^{re.escape(linked)}", folder, text, flags=re.M)
    print(text, end="")
    if not re.search(r"^Success: no issues found", text, re.M):
        session.error("mypy found type errors (above)")


@nox.session(venv_backend="uv")
def lowest(session: nox.Session) -> None:
    """The suite (reliability tier aside) on the lowest direct dependency versions."""
    session.install("--resolution", "lowest-direct", "-e", f".[{EXTRAS}]")
    session.run("python", "-c", _FREEZE)  # the versions this run tested, in the log
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-m", "not reliability", *session.posargs)


@nox.session(venv_backend="uv")
def lock(session: nox.Session) -> None:
    """Rewrite constraints.txt from pyproject.toml (every extra CI installs)."""
    session.install("uv")
    session.run(
        "uv",
        "pip",
        "compile",
        "pyproject.toml",
        "--extra",
        EXTRAS,
        "--extra",
        "dev",
        "--extra",
        "bench",  # bench/peers.py's peers: pinned too, though CI does not install them
        "--python-version",
        "3.11",
        "--custom-compile-command",
        "nox -s lock",
        "--annotation-style",
        "line",
        "-o",
        CONSTRAINTS,
    )
