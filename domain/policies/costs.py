"""The bundled model cost table (behaviour §9) and how a model id is priced.

Prices are USD per 1K tokens, input and output, as published by each
provider; ``context_window`` (tokens) lets the cost guard suggest a cheaper
model that can still hold the same conversation. The table is data, not
policy: a config file may override or extend it (``[uok.cost_guard] table``,
read by the shell and passed to the kernel inside ``KernelEntered.flags``,
so a replay prices with exactly the table the run used).

Lookup (:meth:`CostTable.lookup`): an exact id, then an alias, then the
longest table id that prefixes the given one (``claude-sonnet-4-6-20260301``
→ ``claude-sonnet-4-6``); a ``provider/`` or ``provider:`` prefix is
stripped first (``anthropic/claude-haiku-4-5``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from uok.domain.errors import InputError


class ModelCost(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    provider: str
    input_per_1k: float
    output_per_1k: float
    context_window: int = 0
    aliases: tuple[str, ...] = ()
    updated_at: str = ""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens / 1000 * self.input_per_1k + output_tokens / 1000 * self.output_per_1k

    @property
    def blended_per_1k(self) -> float:
        """One number to rank models by: the mean of input and output price."""
        return (self.input_per_1k + self.output_per_1k) / 2


def _row(model_id: str, provider: str, inp: float, out: float, window: int, *aliases: str) -> ModelCost:
    return ModelCost(
        id=model_id,
        provider=provider,
        input_per_1k=inp,
        output_per_1k=out,
        context_window=window,
        aliases=aliases,
        updated_at="2026-05-01",
    )


BUNDLED_COST_TABLE: tuple[ModelCost, ...] = (
    # Anthropic
    _row("claude-opus-4-7", "anthropic", 0.005, 0.025, 200_000, "opus"),
    _row("claude-opus-4-6", "anthropic", 0.005, 0.025, 200_000),
    _row("claude-opus-4-1", "anthropic", 0.015, 0.075, 200_000),
    _row("claude-sonnet-4-6", "anthropic", 0.003, 0.015, 200_000, "sonnet"),
    _row("claude-sonnet-4-5", "anthropic", 0.003, 0.015, 200_000),
    _row("claude-haiku-4-5", "anthropic", 0.0008, 0.004, 200_000, "haiku"),
    # OpenAI
    _row("gpt-4o", "openai", 0.0025, 0.01, 128_000),
    _row("gpt-4o-mini", "openai", 0.00015, 0.0006, 128_000),
    _row("gpt-4.1", "openai", 0.002, 0.008, 1_047_576),
    _row("gpt-4.1-mini", "openai", 0.0004, 0.0016, 1_047_576),
    _row("gpt-4.1-nano", "openai", 0.0001, 0.0004, 1_047_576),
    _row("o3", "openai", 0.002, 0.008, 200_000),
    # Google
    _row("gemini-2.5-pro", "google", 0.00125, 0.01, 1_048_576),
    _row("gemini-2.5-flash", "google", 0.0003, 0.0025, 1_048_576),
)

HIGH_TIER_INPUT_PER_1K = 0.005


class CostTableError(InputError, ValueError):
    """An override row that cannot be used (names the offending row and field)."""


class CostTable:
    """Rows by id, with alias and prefix lookup."""

    def __init__(self, rows: tuple[ModelCost, ...] = BUNDLED_COST_TABLE):
        self.rows: dict[str, ModelCost] = {r.id: r for r in rows}
        self._aliases = {a: r.id for r in rows for a in r.aliases}
        # longest first, so "gpt-4o-mini-2024" matches gpt-4o-mini, not gpt-4o
        self._prefixes = sorted(self.rows, key=len, reverse=True)

    @classmethod
    def with_overrides(cls, overrides: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None) -> CostTable:
        """The bundled table with rows replaced or added by ``overrides``."""
        rows = {r.id: r for r in BUNDLED_COST_TABLE}
        for i, raw in enumerate(overrides or ()):
            rows_id = raw.get("id") if isinstance(raw, dict) else None
            base = rows.get(rows_id) if isinstance(rows_id, str) else None
            data = {**(msgspec.structs.asdict(base) if base else {}), **raw}
            try:
                row = msgspec.convert(data, ModelCost)
            except msgspec.ValidationError as exc:
                raise CostTableError(f"cost table row {i + 1} ({rows_id!r}): {exc}") from None
            if row.input_per_1k < 0 or row.output_per_1k < 0 or row.context_window < 0:
                raise CostTableError(f"cost table row {i + 1} ({row.id!r}): prices and context_window must be >= 0")
            rows[row.id] = row
        return cls(tuple(rows.values()))

    def lookup(self, model: str) -> ModelCost | None:
        name = model.strip().lower()
        for sep in ("/", ":"):
            if sep in name:
                head, _, tail = name.partition(sep)
                if tail and head.isalpha():
                    name = tail
        row = self.rows.get(name)
        if row is not None:
            return row
        if name in self._aliases:
            return self.rows[self._aliases[name]]
        for rid in self._prefixes:
            if name.startswith(rid) and (len(name) == len(rid) or name[len(rid)] in "-@._"):
                return self.rows[rid]
        return None

    def is_high_tier(self, model: str, threshold: float = HIGH_TIER_INPUT_PER_1K) -> bool:
        row = self.lookup(model)
        return row is not None and row.input_per_1k >= threshold

    def cheaper_alternative(self, model: str) -> ModelCost | None:
        """The cheapest model of the same provider, costing less, whose
        context window is at least as large (behaviour §9's known weakness:
        a suggestion must fit the conversation)."""
        row = self.lookup(model)
        if row is None:
            return None
        candidates = [
            r
            for r in self.rows.values()
            if r.provider == row.provider
            and r.id != row.id
            and r.blended_per_1k < row.blended_per_1k
            and r.context_window >= row.context_window
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda r: (r.blended_per_1k, r.id))
