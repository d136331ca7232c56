"""Looking at the artifacts a plan's units require (behaviour §11) and the
products they declare (behaviour §13): the shell's half of artifact gating
and durable completion. The kernel decides from what is recorded
here (:mod:`uok.domain.kernel.rules.artifacts`); this only observes.

A file counts if it exists and holds something other than whitespace; the
drafts (``CONTEXT-DRAFT.md``) are observed too, so the kernel can give the
draft its own reason.
"""

from __future__ import annotations

from pathlib import Path

from uok.domain.plan import UnitGraph
from uok.domain.plan.artifacts import BLANK, MISSING, PRESENT, probe_paths
from uok.domain.plan.products import is_glob

_CHUNK = 1 << 16


def observe_file(path: Path) -> str:
    """``present`` (exists, not blank), ``blank`` or ``missing``."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                if chunk.strip():
                    return PRESENT
        return BLANK
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return MISSING
    except OSError:
        return MISSING  # unreadable counts as absent: fail closed


def observe_products(root: Path, produces: tuple[str, ...]) -> dict[str, str]:
    """Each declared product (a path, or a glob: present if one match is)
    as ``present``, ``blank`` or ``missing`` (behaviour §13)."""
    out: dict[str, str] = {}
    for p in produces:
        if not is_glob(p):
            out[p] = observe_file(root / p)
            continue
        seen = [observe_file(m) for m in root.glob(p) if m.is_file()]
        out[p] = PRESENT if PRESENT in seen else (BLANK if seen else MISSING)
    return out


class ArtifactWatch:
    """The required artifacts of one run's plan, and what was last recorded of them."""

    def __init__(self, root: Path, graph: UnitGraph):
        self.root = Path(root)
        self.paths = probe_paths(n.requires for n in graph.nodes)
        self._last: dict[str, str] = {}

    def observe(self) -> dict[str, str]:
        """Every path's state now (recorded by the caller)."""
        self._last = {p: observe_file(self.root / p) for p in self.paths}
        return dict(self._last)

    def changed(self) -> dict[str, str] | None:
        """The paths' states if any differs from the last observation, else None."""
        if not self.paths:
            return None
        before = self._last
        now = self.observe()
        return now if now != before else None
