"""Reading what a task spent, in the shapes real tools emit (behaviour §9).

A task appends one JSON object per line to ``$UOK_USAGE_FILE``. Each line
becomes one or more :class:`~uok.domain.events.ModelUsage` rows:

* the documented uok line: ``{"model", "input_tokens", "output_tokens"}``
  (optionally ``cache_read_tokens``, ``cache_write_tokens``, ``cost_usd``);
* an OpenAI chat completion (``usage.prompt_tokens`` /
  ``completion_tokens``, cached tokens in ``prompt_tokens_details``) or a
  Responses API object (``usage.input_tokens`` / ``output_tokens``,
  ``input_tokens_details.cached_tokens``): cached tokens are *part of* the
  input there, so they move from input to cache reads;
* an Anthropic message (``usage.input_tokens``, ``output_tokens``,
  ``cache_creation_input_tokens``, ``cache_read_input_tokens``);
* a coding-agent CLI's JSON result (Claude Code's ``total_cost_usd`` and
  per-model ``modelUsage`` with ``costUSD``): the tool's own cost is kept
  as ``cost_usd`` and is what the turn is charged;
* a direct ``cost_usd`` / ``total_cost_usd`` anywhere on the line.

Token counts given as strings of digits are accepted. A line that is not
JSON, names no model and no cost, or holds a count that is not a
non-negative whole number becomes a row with ``error`` set, naming the
line: the cost guard stops the unit on it (fail closed) unless
``[uok.cost_guard] unpriced = "warn"``.

Each readable row is then priced with ``genai-prices`` (a maintained price
table, used offline: no network at run time), cache reads and writes at
their own rates; the result is recorded in the row (``price``), so the
kernel prices from the observation and a replay prices the same.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from uok.domain.errors import InputError
from uok.domain.events import ModelUsage, UsagePrice

_json = msgspec.json.Decoder()


class _Bad(InputError, ValueError):
    """A usage line that cannot be read (caught here: it becomes a recorded reason, never an exit)."""


def _count(d: dict[str, Any], *keys: str) -> int:
    """The first of ``keys`` present, as a token count (ints, integral floats, digit strings)."""
    for key in keys:
        if key in d and d[key] is not None:
            v = d[key]
            if isinstance(v, bool):
                raise _Bad(f"{key} is {v!r}, not a token count")
            if isinstance(v, str) and v.strip().isdigit():
                return int(v.strip())
            if isinstance(v, int) and v >= 0:
                return v
            if isinstance(v, float) and v >= 0 and v.is_integer():
                return int(v)
            raise _Bad(f"{key} is {v!r}, not a token count")
    return 0


def _money(d: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        if key in d and d[key] is not None:
            v = d[key]
            try:
                f = float(v) if isinstance(v, int | float | str) and not isinstance(v, bool) else None
            except ValueError:
                f = None
            if f is None or f < 0 or f != f or f == float("inf"):
                raise _Bad(f"{key} is {v!r}, not an amount in USD")
            return f
    return None


def _tokens(u: dict[str, Any]) -> tuple[int, int, int, int]:
    """(input without cache, output, cache read, cache write) of a ``usage`` object."""
    if "prompt_tokens" in u or "completion_tokens" in u:  # OpenAI chat completions
        details = u.get("prompt_tokens_details") or {}
        cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
        prompt = _count(u, "prompt_tokens")
        return max(prompt - cached, 0), _count(u, "completion_tokens"), min(cached, prompt), 0
    if isinstance(u.get("input_tokens_details"), dict):  # OpenAI Responses API: cached is part of the input
        cached = _count(u["input_tokens_details"], "cached_tokens")
        total = _count(u, "input_tokens")
        return max(total - cached, 0), _count(u, "output_tokens"), min(cached, total), 0
    return (  # Anthropic (cache tokens beside the input), camelCase CLI entries, the uok line
        _count(u, "input_tokens", "inputTokens"),
        _count(u, "output_tokens", "outputTokens"),
        _count(u, "cache_read_input_tokens", "cacheReadInputTokens", "cache_read_tokens"),
        _count(u, "cache_creation_input_tokens", "cacheCreationInputTokens", "cache_write_tokens"),
    )


def parse_line(obj: Any, default_model: str = "") -> list[ModelUsage]:
    """The usage rows of one decoded line; raises ``_Bad`` when it cannot be read.
    ``default_model``: the model a line naming none is usage of (the one the
    task was handed as ``UOK_MODEL``, behaviour §5)."""
    if not isinstance(obj, dict):
        raise _Bad(f"a JSON {type(obj).__name__}, not an object")
    cost = _money(obj, "total_cost_usd", "cost_usd")
    per_model = obj.get("modelUsage")
    if isinstance(per_model, dict) and per_model:  # Claude Code's result: one row per model, its own cost
        rows = []
        for model, entry in per_model.items():
            if not isinstance(entry, dict):
                raise _Bad(f"modelUsage[{model!r}] is not an object")
            i, o, cr, cw = _tokens(entry)
            rows.append(ModelUsage(str(model), i, o, cr, cw, cost_usd=_money(entry, "costUSD", "cost_usd")))
        if cost is None:
            return rows
        head = [msgspec.structs.replace(r, cost_usd=r.cost_usd or 0.0) for r in rows[:-1]]
        rest = round(cost - sum(r.cost_usd or 0.0 for r in head), 10)  # the tool's total settles the turn
        return [*head, msgspec.structs.replace(rows[-1], cost_usd=max(rest, 0.0))]
    inner = obj.get("usage")
    usage: dict[str, Any] = inner if isinstance(inner, dict) else obj
    model = obj.get("model") or usage.get("model") or default_model
    if not isinstance(model, str):
        raise _Bad(f"model is {model!r}, not a name")
    i, o, cr, cw = _tokens(usage)
    if cost is None and usage is not obj:
        cost = _money(usage, "cost_usd", "cost")
    if not model and cost is None:
        raise _Bad("names no model and no cost_usd")
    if (
        cost is None
        and not (i or o or cr or cw)
        and not any(k in usage for k in ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens"))
    ):
        raise _Bad("holds no token counts and no cost")
    return [ModelUsage(model, i, o, cr, cw, cost_usd=cost)]


def parse_lines(lines: Iterable[bytes], *, first: int = 1, default_model: str = "") -> list[ModelUsage]:
    """Every line's rows; an unreadable line is a row with ``error`` naming it."""
    out: list[ModelUsage] = []
    for n, line in enumerate(lines, first):
        if not line.strip():
            continue
        try:
            out.extend(parse_line(_json.decode(line), default_model))
        except msgspec.DecodeError:
            out.append(ModelUsage("", error=f"usage line {n}: not JSON: {_clip(line)}"))
        except _Bad as exc:
            out.append(ModelUsage("", error=f"usage line {n}: {exc}"))
    return out


def _clip(line: bytes) -> str:
    from uok.adapters.secrets import redact

    text = redact(line.decode("utf-8", "replace").strip())  # before it is cut: the line may hold anything
    return text[:60] + ("…" if len(text) > 60 else "")


def read_usage_file(path: Path, *, default_model: str = "") -> tuple[ModelUsage, ...]:
    """The usage a task wrote to its usage file, each row priced (:func:`price_usage`)."""
    if not path.exists():
        return ()
    return tuple(price_usage(u) for u in parse_lines(path.read_bytes().splitlines(), default_model=default_model))


# ------------------------------------------------------------------ prices


@functools.lru_cache(maxsize=1)
def _prices() -> Any:
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - a dependency; the bundled table still prices
        return None
    return genai_prices


def prices_source() -> str:
    from importlib.metadata import PackageNotFoundError, version

    with contextlib.suppress(PackageNotFoundError):
        return f"genai-prices {version('genai-prices')}"
    return ""


def price_usage(u: ModelUsage) -> ModelUsage:
    """``u`` with ``price`` filled from genai-prices' bundled snapshot when it
    knows the model (never over the network); unchanged otherwise."""
    if u.error or not u.model:
        return u
    gp = _prices()
    if gp is None:
        return u
    provider, _, name = u.model.partition("/") if "/" in u.model else ("", "", u.model)
    usage = gp.Usage(
        input_tokens=u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
        cache_read_tokens=u.cache_read_tokens or None,
        cache_write_tokens=u.cache_write_tokens or None,
        output_tokens=u.output_tokens,
    )
    try:
        calc = gp.calc_price(usage, name, provider_id=provider or None)
    except Exception:  # an unknown model (LookupError) or provider: left unpriced  # noqa: BLE001
        return u
    mp = calc.model_price
    price = UsagePrice(
        model_id=calc.model.id,
        provider=calc.provider.id,
        cost_usd=round(float(calc.total_price), 10),
        input_per_mtok=_rate(getattr(mp, "input_mtok", None)),
        output_per_mtok=_rate(getattr(mp, "output_mtok", None)),
        context_window=int(calc.model.context_window or 0),
        source=prices_source(),
    )
    return msgspec.structs.replace(u, price=price)


def _rate(value: Any) -> float:
    """A flat per-MTok rate (a tiered price: its first tier)."""
    if value is None:
        return 0.0
    with contextlib.suppress(TypeError, ValueError):
        return float(value)
    tiers = getattr(value, "tiers", None) or []
    base = getattr(value, "base", None)
    with contextlib.suppress(TypeError, ValueError):
        return float(base if base is not None else tiers[0].price)
    return 0.0
