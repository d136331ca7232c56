"""Imports every module that defines events, so the codec knows them all.

Add a line here when a new module defines Event subclasses.
"""

from uok.domain import (  # noqa: F401
    bus_events,
    closeout,
    events,
    gate_events,
    gate_requests,
    replay_events,
)
