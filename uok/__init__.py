"""uok: an event-sourced orchestration kernel for autonomous agent work loops.

The installed package is ``uok``; its sub-packages are mapped from the
repository's top-level folders (``uok.domain`` from ``domain/``,
``uok.adapters`` from ``adapters/``, ``uok.projections`` from
``projections/``, ``uok.replay`` from ``replay/``), so the repository keeps
the design card's layout while site-packages gets a single name.
"""

from __future__ import annotations

from typing import Any


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("uok")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Lazy attributes: importing ``uok`` costs nothing until one is used."""
    if name == "__version__":
        value = _version()
        globals()[name] = value
        return value
    raise AttributeError(f"module 'uok' has no attribute {name!r}")
