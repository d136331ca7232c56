"""Turning page data into HTML: one Jinja2 environment, shared by the web
view and ``uok report``.

Templates and the stylesheet ship inside the package (``templates/``,
``static/``); nothing is fetched from elsewhere. The report is the same
templates with the stylesheet inlined and a Content-Security-Policy that
forbids every network request. Rendering is deterministic: the same data
gives the same bytes (filters format numbers and times one fixed way, in
UTC).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from uok.adapters.web.svg import duration_text

PACKAGE = "uok.adapters.web"


def static_text(name: str) -> str:
    return resources.files(PACKAGE).joinpath("static", name).read_text(encoding="utf-8")


def _ts(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _clock(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def _dur(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(float(seconds))


def _ms(ms: float | None) -> str:
    return "—" if ms is None else duration_text(float(ms) / 1000)


def _usd(x: float | None) -> str:
    x = x or 0.0
    sign = "-" if x < 0 else ""
    return f"{sign}${abs(x):.4f}"


def _num(n: int | float | None) -> str:
    return f"{n or 0:,}"


def _compact(data: Any) -> str:
    """Small JSON of a dict (phase data, message payloads), keys sorted."""
    if not data:
        return ""
    text = msgspec.json.encode(data, order="sorted").decode()
    return text if len(text) <= 300 else text[:299] + "…"


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


@functools.cache
def environment() -> Environment:
    folder = resources.files(PACKAGE).joinpath("templates")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(ts=_ts, clock=_clock, dur=_dur, ms=_ms, usd=_usd, num=_num, compact=_compact, cell=_cell)
    return env


DEFAULTS: dict[str, Any] = {
    "report": False,
    "live": False,
    "nav": "",
    "query_without_at": "",
    "link": lambda path: path,
}


def render(name: str, context: dict[str, Any], *, partial: bool = False) -> str:
    """The page ``name`` (a template), whole or only its ``main`` block."""
    template = environment().get_template(name)
    ctx = {**DEFAULTS, **context}
    if not partial:
        return template.render(ctx)
    return "".join(template.blocks["main"](template.new_context(ctx)))
