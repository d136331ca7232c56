"""A task's fingerprint: what it does, hashed, so a changed task is noticed.

Re-running a plan whose task changed since it ran re-queues that task and
what depends on it (``uok.domain.kernel.rules.requeue``). "Changed" means
its *definition* changed: the command, shell, environment, working
directory, gates and their options, the files it writes, its timeout, its
prompt (a Markdown task file's body, by its hash), its metadata, and any
field added to :class:`~uok.domain.plan.model.UnitNode` later (so a new kind
of input counts without touching this module). Where it sits in the plan
(ids, title, dependencies) and how it is run (retries, runaway cap, grace,
heartbeat, the artifacts it waits for, its phase and the products checked
after it) do not: changing them
re-runs nothing.

The fingerprint is computed from a node, so a graph recorded before
fingerprints existed is compared just the same.
"""

from __future__ import annotations

import hashlib

import msgspec
from uok.domain.plan.model import UnitNode

NOT_DEFINITION = frozenset(
    {
        "id",
        "kind",
        "unit_type",
        "milestone",
        "slice",
        "title",
        "depends_on",
        "retries",
        "max_dispatches",
        "grace",
        "heartbeat",
        "body",  # its hash, body_sha256, stands for it
        "source_file",
        "requires",  # when it may start (artifact gating), not what it does
        "phase",
        "produces",  # what is checked after it, not what it does
        "clarify_rounds",
    }
)


def fingerprint(node: UnitNode) -> str:
    """16 hex digits of the SHA-256 of the node's definition (sorted JSON)."""
    data = {k: v for k, v in msgspec.structs.asdict(node).items() if k not in NOT_DEFINITION}
    return hashlib.sha256(msgspec.json.encode(data, order="sorted")).hexdigest()[:16]


def changed_fields(old: UnitNode, new: UnitNode) -> list[str]:
    """The definition's fields that differ (for the line a person reads)."""
    a, b = msgspec.structs.asdict(old), msgspec.structs.asdict(new)
    return sorted(k for k in b if k not in NOT_DEFINITION and a.get(k) != b.get(k))
