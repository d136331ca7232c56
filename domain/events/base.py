"""The base of every event: who authored it, when, and where it is stored.

Two families, and the difference is what makes replay possible:

* **Observations** (``OBSERVED = True``) are inputs from the outside world: a
  clock reading, a pid and whether it was alive, what a subprocess returned,
  what a gate found, a signal, a chaos injection. The shell measures them;
  the domain never does.
* **Decisions** are what the kernel concluded from the observations and the
  state folded so far. Re-running the domain over the recorded observations
  must reproduce the recorded decisions exactly; ``replay`` checks it.

Every event names the run that authored it (``run_id``, empty for events
written outside a run, such as a bus message sent from the CLI) and carries
``at``, the wall-clock reading supplied by the shell.

Events are encoded with msgspec JSON; the stored topic is ``Name/vN``. When
a Struct's shape changes, bump ``VERSION`` and register an upcaster from the
old version (see :mod:`uok.domain.log.codec`).

Compact encoding (``omit_defaults``, issue 15): a field holding its default
is left out of the payload, and decoding fills it back in. So the defaults
of ``Name/vN`` are part of that topic's schema: **changing a default is a
new version** (bump ``VERSION``, and an upcaster that puts the old default
into a payload that lacks the field), never an edit in place, or every
event written before would silently read the new value. The defaults of
every topic are pinned in ``tests/unit/event_defaults.json`` and checked by
``tests/unit/test_event_encoding.py``. (Only the events themselves are
compact; the Structs nested in them encode every field, as they did.)
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True, omit_defaults=True):
    """Base of every event. ``type`` (the tag) is the class name (the codec leaves
    it out of the stored payload: the topic names the class)."""

    OBSERVED: ClassVar[bool] = False
    VERSION: ClassVar[int] = 1

    run_id: str = ""
    at: datetime

    def stream(self) -> str:
        """The aggregate stream this event belongs to (optimistic concurrency unit)."""
        return f"run:{self.run_id}" if self.run_id else "global"

    def pinned_version(self) -> int | None:
        """The version this event must take in its stream, or None for "the next".

        Events whose stream version carries meaning pin it: a writer token's
        global sequence, a message's send (version 1) and read (version 2).
        A racing duplicate then fails on UNIQUE(stream, version) instead of
        quietly taking the next version (see ``uok.adapters.eventlog``)."""
        return None
