"""A running task's progress report (issue 12): a black box no more.

A task appends a line to its progress file (``UOK_PROGRESS_FILE``, or
``uok progress TEXT`` from inside the task); the shell reads it while the
task runs and records each line as a :class:`ProgressReported` observation.
The kernel moves the unit to ``progress`` with the message as its reason
(``uok.domain.kernel.rules.progress``), so ``uok status``, the live display
and time travel show how far a long task has got.
"""

from __future__ import annotations

from typing import ClassVar

from uok.domain.events.base import Event

MAX_MESSAGE = 500  # characters of a report kept (a progress line is a headline, not a log)


class ProgressReported(Event, frozen=True, kw_only=True):
    """A line the task wrote to its progress file, as read while it ran."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    message: str
