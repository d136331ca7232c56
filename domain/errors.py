"""The three kinds of failure uok reports, each with the exit code it means.

Every exception uok raises on purpose derives from one of them, so a
caller (the CLI, a script using :mod:`uok`) tells them apart by class:

* :class:`InputError` (exit 2): what was asked cannot be done as given --
  a bad plan, config, option or name; nothing was written.
* :class:`IntegrityFailure` (exit 3): the log (or an export of it) is
  damaged, foreign, or disagrees with itself; trust nothing read from it.
* :class:`RuntimeFailure` (exit 1): a sound request on a sound log failed
  while running (disk full, a contending writer, a missing scanner).

They live in the domain because domain exceptions (:class:`ChainBroken`,
:class:`PlanError` ...) derive from them and the domain imports nothing
outside itself; :mod:`uok.errors` re-exports them with the full map.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTEGRITY",
    "EXIT_RUNTIME",
    "InputError",
    "IntegrityFailure",
    "RuntimeFailure",
    "UokError",
]

EXIT_RUNTIME = 1
EXIT_INPUT = 2
EXIT_INTEGRITY = 3


class UokError(Exception):
    """Base of every error uok raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[int] = EXIT_RUNTIME


class InputError(UokError):
    """Bad input (plan, config, option, name): nothing was written."""

    exit_code: ClassVar[int] = EXIT_INPUT


class IntegrityFailure(UokError):
    """The log or an export is damaged, foreign or inconsistent."""

    exit_code: ClassVar[int] = EXIT_INTEGRITY


class RuntimeFailure(UokError):
    """A sound request failed while running (disk full, contention, a missing tool)."""

    exit_code: ClassVar[int] = EXIT_RUNTIME
