"""How many clarify rounds a task may have (behaviour §11): the seed's
``PLAN_V2_CLARIFY_ROUND_LIMIT`` of 3, or the task's own ``clarify = N``."""

from __future__ import annotations

CLARIFY_ROUND_LIMIT = 3


def refusal(asked: int, limit: int) -> str | None:
    """Why round ``asked + 1`` is refused (None: it may be asked)."""
    if asked < limit:
        return None
    return f"clarify round limit reached: {asked} of {limit} rounds used (limit {limit})"
