"""How the kernel folds ``RunForked``: the runs that were open at the fork
point are detached from their processes.

Their pids belong to the parent log's world (the parent run may even be
alive still, or its pid reused by an unrelated process). Setting the pid
to 0, which no liveness probe ever finds alive, makes the next kernel on
the fork close them as ``recovered`` and re-queue their in-flight units
within budget: the same recovery as after a crash, recorded as the fork's
own events.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.state import KernelState


def fold_forked(st: KernelState, e: ev.RunForked) -> None:
    for run_id in e.open_runs:
        run = st.runs.get(run_id)
        if run is not None and run.status == "open":
            run.pid = 0
