"""A usage's price as the shell found it: shared by the usage a task
reports (:class:`~uok.domain.events.runs.ModelUsage`) and the usage an
agent streams (:class:`~uok.domain.events.agents.AgentStep`)."""

from __future__ import annotations

import msgspec


class UsagePrice(msgspec.Struct, frozen=True, kw_only=True):
    """What the shell found a model's usage costs in a maintained price
    table (``genai-prices``, offline): recorded with the usage, so the
    kernel prices it and a replay prices it the same, whatever the table
    says later."""

    model_id: str  # the table's id for the model
    provider: str = ""
    cost_usd: float = 0.0  # of exactly this usage (cache reads and writes at their own rates)
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    context_window: int = 0
    source: str = ""  # e.g. "genai-prices 0.2.3"
