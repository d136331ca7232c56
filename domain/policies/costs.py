"""The bundled model cost table (behaviour §9) and how a model id is priced.

Prices are USD per 1K tokens, input and output, as ``genai-prices`` (the
maintained table the shell prices usage with, offline) has them; a test
keeps the two in step. This table is the fallback for a usage row the
shell recorded no price for (an older log) and the list the cheaper-model
hint picks from; ``context_window`` (tokens) lets the cost guard suggest a cheaper
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
        updated_at="genai-prices 0.2.3",
    )


BUNDLED_COST_TABLE: tuple[ModelCost, ...] = (
    # Anthropic
    _row("claude-opus-4-7", "anthropic", 0.005, 0.025, 1_000_000, "opus"),
    _row("claude-opus-4-6", "anthropic", 0.005, 0.025, 1_000_000),
    _row("claude-opus-4-1", "anthropic", 0.015, 0.075, 200_000),
    _row("claude-sonnet-4-6", "anthropic", 0.003, 0.015, 1_000_000, "sonnet"),
    _row("claude-sonnet-4-5", "anthropic", 0.003, 0.015, 200_000),
    _row("claude-haiku-4-5", "anthropic", 0.001, 0.005, 200_000, "haiku"),
    # OpenAI
    _row("gpt-4o", "openai", 0.0025, 0.01, 128_000),
    _row("gpt-4o-mini", "openai", 0.00015, 0.0006, 128_000),
    _row("gpt-4.1", "openai", 0.002, 0.008, 1_000_000),
    _row("gpt-4.1-mini", "openai", 0.0004, 0.0016, 1_000_000),
    _row("gpt-4.1-nano", "openai", 0.0001, 0.0004, 1_000_000),
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

    def __init__(self, rows: tuple[ModelCost, ...] = BUNDLED_COST_TABLE, overridden: frozenset[str] = frozenset()):
        self.rows: dict[str, ModelCost] = {r.id: r for r in rows}
        self.overridden = overridden  # ids a config override set: they win over a recorded genai-prices price
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
        return cls(
            tuple(rows.values()), frozenset(str(r["id"]) for r in overrides or () if isinstance(r, dict) and "id" in r)
        )

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
        """The next tier down: of the same family's models that cost less
        and whose context window is at least as large (a suggestion must fit
        the conversation, behaviour §9), the dearest one, not the cheapest."""
        row = self.lookup(model)
        if row is None:
            return None
        candidates = [
            r
            for r in self.rows.values()
            if r.provider == row.provider
            and _family(r.id) == _family(row.id)
            and r.id != row.id
            and r.blended_per_1k < row.blended_per_1k
            and r.context_window >= row.context_window
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.blended_per_1k, r.id))


def _family(model_id: str) -> str:
    """``claude``, ``gpt``, ``gemini``, ``o``: the letters a model id starts with."""
    n = len(model_id) - len(model_id.lstrip("abcdefghijklmnopqrstuvwxyz"))
    return model_id[:n]


def usd(amount: float) -> str:
    """Money as people read it, with the digits that matter: cents for
    amounts of a cent or more, up to six decimals below (``$0.000123``,
    never ``$0.00`` for a spend that is not zero)."""
    if amount == 0:
        return "$0.00"
    if abs(amount) >= 0.01:
        text = f"{amount:.4f}".rstrip("0")
        whole, _, frac = text.partition(".")
        return f"${whole}.{frac.ljust(2, '0')}"
    return f"${amount:.6f}".rstrip("0")
