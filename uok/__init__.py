"""uok: an event-sourced orchestration kernel for autonomous agent work loops.

The public API is what this module exports; everything else is internal::

    import uok

    result = uok.run_plan("plan.toml", db="work/events.db", workers=4)
    print(result.status, result.units_completed, result.exit_code)

    print(uok.status("work/events.db"))        # runs and units by state (= `uok status --json`)

    with uok.read_models("work/events.db") as rm:  # every read model, caught up on demand
        units = rm.runner.states(["units"])["units"]

    log = uok.open_log("work/events.db")       # the typed, hash-chain-verified log
    for position, event in log.events():
        ...
    log.store.close()

* ``run_plan(plan, *, db=None, workers=2, config=None, flags=None)`` runs (or
  resumes) a plan and returns a :class:`RunResult`; bad input raises
  :class:`InputError` before the log is touched.
* ``status(db=None)``, ``read_models(db=None)``, ``open_log(db=None, *, create=False)``
  read the log.
* ``db`` is a path (None: ``$UOK_DB``, else the nearest ``.uok/events.db`` up
  from the working directory, as the CLI finds it).
* Failures are :class:`UokError` subclasses: :class:`InputError` (the CLI's
  exit 2), :class:`IntegrityFailure` (3), :class:`RuntimeFailure` (1).

Attributes are imported on first use, so ``import uok`` costs nothing. The
installed package is ``uok``; its sub-packages are mapped from the
repository's top-level folders (``uok.domain`` from ``domain/``, ``uok.adapters``
from ``adapters/``, ``uok.projections``, ``uok.replay``), so site-packages
gets a single name. ``uok.bootstrap`` is the composition root behind this API.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers and editors
    from uok.adapters.runner import RunResult
    from uok.bootstrap import open_log, read_models, run_plan, status
    from uok.errors import InputError, IntegrityFailure, RuntimeFailure, UokError

    __version__: str

_EXPORTS = {
    "run_plan": "uok.bootstrap",
    "status": "uok.bootstrap",
    "read_models": "uok.bootstrap",
    "open_log": "uok.bootstrap",
    "RunResult": "uok.adapters.runner",
    "UokError": "uok.errors",
    "InputError": "uok.errors",
    "IntegrityFailure": "uok.errors",
    "RuntimeFailure": "uok.errors",
}

__all__ = [  # resolved lazily by __getattr__; tests/e2e/test_packaging.py checks it matches _EXPORTS
    "InputError",
    "IntegrityFailure",
    "RunResult",
    "RuntimeFailure",
    "UokError",
    "__version__",
    "open_log",
    "read_models",
    "run_plan",
    "status",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("uok")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> object:
    """Lazy attributes: importing ``uok`` costs nothing until one is used."""
    if name == "__version__":
        value: object = _version()
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'uok' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
