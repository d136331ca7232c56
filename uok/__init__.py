"""uok: an event-sourced orchestration kernel for autonomous agent work loops.

The installed package is ``uok``; its sub-packages are mapped from the
repository's top-level folders (``uok.domain`` from ``domain/``,
``uok.adapters`` from ``adapters/``, ``uok.projections`` from
``projections/``, ``uok.replay`` from ``replay/``), so the repository keeps
the design card's layout while site-packages gets a single name.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("uok")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
