"""Imports every module that defines events, so the codec knows them all.

Add a line here when a new module defines Event subclasses.
"""

from uok.domain import bus_events, events, gate_events  # noqa: F401
from uok.domain import closeout  # noqa: F401
from uok.domain import gate_requests  # noqa: F401
from uok.domain import replay_events  # noqa: F401
