"""What the read models' snapshots of one long chain cost on disk.

    .venv/bin/python bench/chain_disk.py [--tasks 2000]

Runs a plan of ``--tasks`` ``true`` tasks in one chain (as
tests/integration/test_snapshot_disk.py does with 600), its end catching
the read models up, then prints the file's size, the events' payload
bytes, the snapshot blobs (all, and the ``units`` read model's), the
manifests, the blobs' ratio to the payload, and the process CPU and wall
time of the run. The figure to watch is the ``units`` blobs: a part holding
a whole plan, stored whole, grows with the plan's size times the run's
length; stored as chunks (projections/chunks.py), with the run's length.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apsw

from uok import bootstrap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000)
    n = ap.parse_args().tasks
    tmp = Path(tempfile.mkdtemp(prefix="uok-chain-disk-"))
    try:
        plan = tmp / "plan.toml"
        plan.write_text(
            '[plan]\nid = "disk"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "c0"\n\n'
            + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n\n' for i in range(n)),
            encoding="utf-8",
        )
        db = tmp / "events.db"
        cpu, wall = time.process_time(), time.perf_counter()
        prepared = bootstrap.prepare_run(plan, flags={"max_iterations": 10 * n + 100})
        log = bootstrap.open_log(str(db), create=True)
        result = bootstrap.assemble_runner(log, prepared, workers=1).run()
        log.store.close()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)

        def q(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0] or 0)

        events = q("SELECT sum(length(payload)) FROM events")
        blobs = q("SELECT sum(length(data)) FROM projection_blobs")
        units = q("SELECT sum(length(data)) FROM projection_blobs WHERE name = 'units'")
        manifests = q("SELECT sum(length(manifest)) FROM projection_snapshots")
        conn.close()
        mb = 1e6
        print(
            f"{n} tasks (exit {result.exit_code}): file {os.path.getsize(db) / mb:.1f} MB, events' payload "
            f"{events / mb:.2f} MB, snapshot blobs {blobs / mb:.2f} MB (units {units / mb:.2f} MB), manifests "
            f"{manifests / mb:.2f} MB; blobs / payload {blobs / events:.3f}; run CPU {cpu:.2f} s, wall {wall:.2f} s"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
