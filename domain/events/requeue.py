"""Events of re-queueing work that had ended (issue 12): an operator's retry,
a re-run of the plan, an amended task.

A unit that ended (``notified``) is final for the run that ended it; a
later run of its plan may put it back in the queue, and says why with a
:class:`UnitRequeued` decision just before the unit's ``notified → queued``
transition. What the operator asked for arrives in the run's
``KernelEntered.flags["retry"]`` (:class:`RetryRequest`), so replay decides
the same re-queues from the same entry.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from uok.domain.events.base import Event

RequeueCause = Literal["retry", "rerun", "amended", "dependency"]
"""``retry``: named by ``uok retry`` (a new retry epoch: attempts and the
dispatch count start over); ``rerun``: failed or blocked, and the plan was
run again (attempts start over, the dispatch count carries on, so the
runaway cap still holds); ``amended``: the task's definition changed since it
ran (its fingerprint differs); ``dependency``: a unit it depends on was
re-queued."""


class RetryRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``uok retry`` asked for, recorded in ``KernelEntered.flags["retry"]``.

    ``units``: the units named (empty: every unit whose outcome is in
    ``states``); ``states``: the outcomes to retry (``failed`` also covers
    ``stale`` and ``runaway-recovered``); ``by``: who asked (user@host);
    ``reason``: why, as they said it."""

    units: tuple[str, ...] = ()
    states: tuple[str, ...] = ("failed", "blocked", "cancelled")
    by: str = ""
    reason: str = ""


class UnitRequeued(Event, frozen=True, kw_only=True):
    """A unit that had ended goes back to the queue; the transition follows."""

    plan_id: str
    unit_id: str
    cause: RequeueCause
    was: str  # the outcome it had ended with: completed, failed, blocked, ...
    epoch: bool = False  # True: a new retry epoch (uok retry): the dispatch count starts over
    old_fingerprint: str = ""  # amended: the definition it last ran with, and the one it runs with now
    new_fingerprint: str = ""
    dependency: str = ""  # cause dependency: the re-queued unit it depends on
    by: str = ""  # cause retry: who asked
    reason: str = ""  # one line a person reads ("command changed", the operator's words)
