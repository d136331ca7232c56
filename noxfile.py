"""Sessions for developers and CI: ``nox -l`` lists them, ``nox -s NAME`` runs one.

Each session builds its own virtual environment (with uv when it is on the
path or installed beside nox: the ``dev`` extra brings both). To add a
session, write a function below decorated with ``@nox.session``; install
the project with :func:`install` so every session honours the same
constraints.

* ``lowest``: every direct dependency at the lowest version pyproject.toml
  allows (uv's ``--resolution lowest-direct``), then the test suite. The
  floors we publish are floors we have run.
* ``lock``: rewrite ``constraints.txt``, the exact versions ``.ci/run``
  installs (``pip install -c constraints.txt``), from pyproject.toml.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True

CONSTRAINTS = "constraints.txt"
_FREEZE = (
    "import importlib.metadata as m; print(*sorted(f'{d.name}=={d.version}' for d in m.distributions()), sep='\\n')"
)
EXTRAS = "test"


def install(session: nox.Session, *args: str, constraints: bool = True) -> None:
    """Install the project (editable, with the ``test`` extra) and ``args``
    into the session's environment, pinned by constraints.txt unless told not to."""
    pins = ["-c", CONSTRAINTS] if constraints else []
    session.install(*pins, "-e", f".[{EXTRAS}]", *args)


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
