"""Artifact gating (behaviour §11, the seed's plan-v2 context gate): which
files must exist before a unit may be dispatched, and why it is held.

A unit's ``requires`` lists artifact paths (relative to the plan root). A
file counts only if it exists and is not blank. The shell observes each
path of :func:`probe_paths` (the required files and their drafts) as one of
:data:`FACTS` and records it (``KernelEntered.artifacts``,
``ArtifactsObserved``); the kernel decides from the recorded facts alone,
so a replay holds exactly the units the run held.

Reasons follow the seed's wording: ``missing CONTEXT.md``; with a draft
(``CONTEXT-DRAFT.md``) but no finalized file, ``draft exists but finalized
CONTEXT.md is missing``; ``CONTEXT.md is blank``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

PRESENT, BLANK, MISSING = "present", "blank", "missing"
FACTS = (PRESENT, BLANK, MISSING)


def draft_of(path: str) -> str:
    """``docs/CONTEXT.md`` -> ``docs/CONTEXT-DRAFT.md``."""
    stem, ext = posixpath.splitext(path)
    return f"{stem}-DRAFT{ext}"


def probe_paths(requires: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """Every path the shell must observe for these units' ``requires``: each
    required file and its draft, once each, in a stable order."""
    out: dict[str, None] = {}
    for paths in requires:
        for p in paths:
            out.setdefault(p)
            out.setdefault(draft_of(p))
    return tuple(out)


def why_not(path: str, facts: Mapping[str, str]) -> str | None:
    """Why one required artifact does not count (None: it does). An
    unobserved path counts as missing: fail closed."""
    fact = facts.get(path, MISSING)
    if fact == PRESENT:
        return None
    if fact == BLANK:
        return f"{path} is blank"
    if facts.get(draft_of(path)) == PRESENT:
        return f"draft exists but finalized {path} is missing"
    return f"missing {path}"


def hold_reasons(requires: Iterable[str], facts: Mapping[str, str]) -> tuple[str, ...]:
    """The reasons a unit with these ``requires`` must wait; () when it need not."""
    return tuple(r for p in requires if (r := why_not(p, facts)) is not None)
