"""The executor makes its tasks' pipes and files itself, as bare
descriptors (uok.adapters.childproc, issue 15): whatever way a task ends
(exits, prints, cannot start, times out, is stopped before it starts), every
descriptor it was given is closed again and its output is kept whole."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from uok.adapters.executor import CommandExecutor
from uok.adapters.turnlogs import LogsDir
from uok.domain.plan import UnitNode

PY = sys.executable


def _node(unit: str, command: tuple[str, ...], **kw) -> UnitNode:
    return UnitNode(id=unit, kind="task", unit_type="execute-task", milestone="M", slice="S", title=unit,
                    command=command, **kw)  # fmt: skip


def _open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_no_descriptor_is_left_open_whichever_way_a_task_ends(tmp_path: Path):
    ex = CommandExecutor(tmp_path, logs=LogsDir(tmp_path / "logs"))
    printing = _node("p", (PY, "-c", "import sys; print('out' * 3); print('err', file=sys.stderr)"))
    ex.execute(printing, run_id="r", turn_id="r:0", attempt=1)  # warm-up: the one /dev/null kept for stdin
    before = _open_descriptors()
    turn = iter(range(1, 1000))
    for _ in range(5):
        out = ex.execute(printing, run_id="r", turn_id=f"r:{next(turn)}", attempt=1)
        assert (out.exit_code, out.stdout_tail, out.stderr_tail) == (0, "outoutout\n", "err\n")
        assert out.stdout_log is not None and out.stdout_log.size == 10
    missing = ex.execute(_node("m", ("/nonexistent/uok-no-such-command",)), run_id="r", turn_id="r:90", attempt=1)
    assert missing.cannot_start and missing.exit_code is None
    slow = ex.execute(_node("s", ("sleep", "30"), timeout=0.2, grace=0.1), run_id="r", turn_id="r:91", attempt=1)
    assert slow.timed_out and slow.exit_code is not None
    ex.stop("r:92", "cancel")
    stopped = ex.execute(_node("c", ("true",)), run_id="r", turn_id="r:92", attempt=1)
    assert stopped.error.startswith("not started")
    assert _open_descriptors() == before


REPORTS_THEN_EXITS = """
import os, time
print("start", flush=True)
out = os.environ["UOK_PROGRESS_FILE"].removesuffix(".progress") + ".stdout"
deadline = time.monotonic() + 30
while not (os.path.exists(out) and open(out).read()):  # the pump has read it (and looked for progress)
    assert time.monotonic() < deadline
    time.sleep(0.005)
with open(os.environ["UOK_PROGRESS_FILE"], "a") as f:
    f.write("half done\\n")
"""


def test_a_report_made_right_before_the_task_exits_is_not_lost(tmp_path: Path):
    """The progress file is looked at once a tick while the task runs; the
    last look, once it has exited, is made however recent the one before."""
    ex = CommandExecutor(tmp_path, logs=LogsDir(tmp_path / "logs"))
    lines: list[str] = []
    out = ex.execute(
        _node("t", (PY, "-c", REPORTS_THEN_EXITS)), run_id="r", turn_id="r:1", attempt=1, on_progress=lines.append
    )
    assert out.exit_code == 0, out.stderr_tail
    assert lines == ["half done"]
