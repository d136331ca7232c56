"""A slice's own gates run on its complete-slice unit (behaviour §13: "a
complete-slice unit ... may carry gates of its own"): real runs, the real
verification gate checking what the slice's tasks left."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import json_lines, uok

CHECK = "import pathlib, sys; sys.exit(0 if pathlib.Path('out.txt').read_text() == 'ok' else 1)"


def run_slice(tmp_path: Path, written: str) -> tuple[int, list[dict]]:
    root = tmp_path / "project"
    root.mkdir()
    write = f"import pathlib; pathlib.Path('out.txt').write_text({written!r})"
    gate = json.dumps([sys.executable, "-c", CHECK])
    (root / "plan.toml").write_text(
        '[plan]\nid = "sg"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'  gates = [{{ id = "verification", command = {gate} }}]\n'
        f'    [[milestones.slices.tasks]]\n    id = "write"\n    command = {json.dumps([sys.executable, "-c", write])}\n'
    )
    db = tmp_path / "events.db"
    r = uok("run", str(root / "plan.toml"), "--db", str(db), "--quiet")
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    return r.returncode, rows


def test_a_slices_gate_passes_on_its_complete_slice_unit(tmp_path: Path):
    rc, rows = run_slice(tmp_path, "ok")
    assert rc == 0
    runs = [(e["unit_id"], e["gate_id"], e["outcome"]) for e in rows if e["type"] == "GateRun"]
    assert runs == [("complete-slice:M1/S1", "verification", "pass")]  # the task itself has no gate


def test_a_failing_slice_gate_fails_the_slice(tmp_path: Path):
    rc, rows = run_slice(tmp_path, "not ok")
    assert rc == 1
    failed = [e for e in rows if e["type"] == "UnitTransitioned" and e["to_state"] == "failed"]
    assert failed and {e["unit_id"] for e in failed} == {"complete-slice:M1/S1"}
    assert all(e["failure_class"] == "verification" for e in failed)
