"""The ``permissions`` gate: a unit under a ``restricted`` (read-only) or
``strict`` permission profile changed only what it may (behaviour §5).

The kernel appends this gate to every command or agent unit whose
effective profile is enforced (``rules.gating.gates_of``, when the run
records ``flags["permission_gate"]``). It judges the turn's real change set
(``adapters/changeset.py``: the work tree at the turn's start against now,
declared or not):

* ``restricted``: any changed or deleted file → ``fail``;
* ``strict``: a changed or deleted file not covered by the unit's declared
  paths (``writes``, write intents: plain paths cover what is below them,
  globs what they match) → ``fail``;

with failure class ``policy`` (no retry: doing it again changes the same
files), naming the offending files. No change → ``pass``. A change set that
cannot be read → ``fail`` (fail closed). With several workers, a file
another running unit changed without declaring it is in this unit's window
too (the change tracker cannot tell whose it is): under an enforced
profile, run with one worker or let every unit declare what it writes.

Profiles uok cannot enforce (network access, reading secrets, which tools
an agent may call) are advisory: the profile is handed to the task
(``UOK_PERMISSION_PROFILE``) for its own sandbox to apply.
"""

from __future__ import annotations

from collections.abc import Callable

from uok.adapters.changeset import ChangeSet, SnapshotError
from uok.domain.plan.intents import covers
from uok.domain.policies.gates import GateContext, GateResult

GATE_ID = "permissions"
GATE_TYPE = "policy"
Changes = Callable[[str], ChangeSet | None]

_SHOWN = 10


def _listed(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


class PermissionGate:
    """Registered by the composition root when a run uses an enforced
    profile; ``changes`` (turn id -> change set) and ``relative`` (plan-root
    paths -> the change set's top-relative ones) come from the run's tracker."""

    def __init__(self, changes: Changes, relative: Callable[[list[str]], list[str]] = list):
        self.id, self.type = GATE_ID, GATE_TYPE
        self.changes, self.relative = changes, relative

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        profile = str(context.options.get("permission_profile", "standard"))
        try:
            change_set = self.changes(context.turn_id)
        except SnapshotError as exc:
            return GateResult(outcome="fail", failure_class="policy", rationale=f"change set unreadable: {exc}")
        if change_set is None:
            return GateResult(
                outcome="fail", failure_class="policy", rationale="no snapshot of the work tree for this turn"
            )
        changed = sorted(change_set.paths)
        if profile == "restricted":
            offending = changed
            why = "the read-only (restricted) profile allows no change"
        elif profile == "strict":
            declared = self.relative([*context.writes, *map(str, context.options.get("write_intents", ()))])
            offending = [p for p in changed if not any(covers(d, p) for d in declared)]
            shown = ", ".join(declared) if declared else "nothing"
            why = f"the strict profile allows only the declared paths ({shown})"
        else:
            return GateResult(outcome="pass", rationale=f"profile {profile}: not checked")
        if offending:
            return GateResult(
                outcome="fail",
                failure_class="policy",
                rationale=f"changed undeclared file(s) {_listed(offending)}: {why}",
            )
        return GateResult(outcome="pass", rationale=f"{len(changed)} changed file(s), all allowed ({profile})")
