"""Durable completion (behaviour §13, the seed's unit-runtime reconciliation):
a unit that declares ``produces`` is completed only if every declared
product exists and is not blank after its command succeeded.

The shell observes each declared path or glob after the task exits
(``ExecutionFinished.products``: ``present`` | ``blank`` | ``missing``; a
glob is present when one of its matches is); the kernel decides from the
recording, so a replay fails exactly the attempts the run failed. A missing
product is a failure of class ``artifact``, retried once (the retry matrix,
``uok.domain.policies.gates``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from uok.domain.plan.artifacts import BLANK, PRESENT

GLOB_CHARS = frozenset("*?[")


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def unmet_products(produces: Iterable[str], facts: Mapping[str, str]) -> tuple[str, ...]:
    """What is wrong with the declared products, one phrase each; () when
    all exist. An unobserved product counts as missing: fail closed."""
    out = []
    for p in produces:
        fact = facts.get(p)
        if fact == PRESENT:
            continue
        if fact == BLANK:
            out.append(f"{p} is blank")
        else:
            out.append(f"no file matches {p}" if is_glob(p) else f"{p} is missing")
    return tuple(out)
