"""Events of the operating model (behaviour §5): a run's work and model
mode changing while it runs."""

from __future__ import annotations

from uok.domain.events.base import Event


class ModeChanged(Event, frozen=True, kw_only=True):
    """The driven run's work mode and/or model mode changed (a ``uok steer
    RUN mode ...`` message): units dispatched from now on run under the new
    modes, and their model is routed from the new model mode. Decided by
    the steering rule; ``message_id`` names the message that asked."""

    work_mode: str
    model_mode: str
    previous_work_mode: str
    previous_model_mode: str
    message_id: str = ""
    plan_id: str = ""
