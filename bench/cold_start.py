"""Cold start of the ``uok`` command: what each common command imports and
what a whole process costs, on a small log.

For each command: one ``python -X importtime -m uok ...`` process gives the
import time (the sum of the top-level imports' cumulative microseconds) and
which top-level packages were imported, with their self time summed; then
``--repeat`` plain processes give the child's CPU time (``RUSAGE_CHILDREN``,
user + system; median), which moves less with the machine's load than wall
time, and the wall time (median), meaningful on an otherwise idle machine only.
``--instructions`` adds one more process per command under valgrind's
callgrind: the instructions it executed (the uok process only, not its
tasks), which do not move with the load at all (PYTHONHASHSEED=0).

    .venv/bin/python bench/cold_start.py                 # every command, --repeat 7
    .venv/bin/python bench/cold_start.py --top 8 status  # one command, its 8 most costly packages
    .venv/bin/python bench/cold_start.py --instructions  # + instructions (needs valgrind; slow)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PLAN = '[plan]\nid = "one"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "S"\n\n'
PLAN += '[[milestones.slices.tasks]]\nid = "t"\ncommand = ["true"]\n'

# name -> argv after `uok --db LOG`; `run` runs the 1-task plan again (a resume:
# the task ran in the preparation, its completion is folded from the log).
COMMANDS = {
    "--help": ["--help"],
    "status": ["status"],
    "events": ["events"],
    "verify": ["verify"],
    "run": ["run", "plan.toml", "--quiet"],
    "run-fresh": ["run", "plan.toml", "--quiet"],
}

# An installed uok imports byte-compiled modules; PYTHONDONTWRITEBYTECODE would
# make every process compile them again.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "UOK_DB")}


def process(args: list[str], cwd: Path, *, importtime: bool = False) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stderr) of one ``python -m uok`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    flags = ["-X", "importtime"] if importtime else []
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "uok", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"uok {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stderr


def instructions(args: list[str], cwd: Path) -> int:
    """Instructions one ``python -m uok`` process executes (callgrind's Ir)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "uok", *args],
        cwd=cwd,
        env={**ENV, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"uok {' '.join(args)} under valgrind failed ({proc.returncode}): {proc.stderr[-2000:]}")
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind: {proc.stderr[-2000:]}")
    return int(found.group(1))


def imports(stderr: str) -> tuple[int, Counter[str]]:
    """(total µs of the top-level imports, self µs per top-level package)
    from ``-X importtime`` output."""
    total, per_package = 0, Counter[str]()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.endswith("| imported package"):
            continue
        _, self_us, cumulative, name = (part.strip() for part in line.replace("import time:", "|", 1).split("|"))
        indent = len(line.rsplit("|", 1)[1]) - len(line.rsplit("|", 1)[1].lstrip())
        if indent == 1:  # top level: `| name` (one space), nested: two more per level
            total += int(cumulative)
        per_package[name.split(".")[0]] += int(self_us)
    return total, per_package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="*", help=f"some of {', '.join(COMMANDS)} (default: all)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--top", type=int, default=5, help="how many packages to name per command")
    ap.add_argument("--instructions", action="store_true", help="also count instructions with valgrind (slow)")
    args = ap.parse_args()
    names = args.commands or list(COMMANDS)
    if unknown := [n for n in names if n not in COMMANDS]:
        ap.error(f"unknown command(s): {', '.join(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="uok-coldstart-"))
    try:
        (work / "plan.toml").write_text(PLAN, encoding="utf-8")
        log = str(work / "events.db")
        process(["--db", log, "run", "plan.toml", "--quiet"], work)  # the log, and byte-compiled modules
        for name in names:  # warm-up: byte-compile what each command imports
            process(["--db", log, *COMMANDS[name]], work)
        print(
            f"# {os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {sys.version.split()[0]}"
        )
        extra = (" instructions (M) |", "---:|") if args.instructions else ("", "")
        print(
            "\n| command | imports (ms, -X importtime) | CPU median (s) | wall median (s) |"
            f"{extra[0]} costliest packages (self ms) |"
        )
        print(f"|---|---:|---:|---:|{extra[1]}---|")
        for name in names:
            fresh = 0

            def argv(name: str = name) -> list[str]:
                nonlocal fresh
                if name == "run-fresh":
                    fresh += 1
                    return ["--db", str(work / f"fresh{fresh}.db"), *COMMANDS[name]]
                return ["--db", log, *COMMANDS[name]]

            total, packages = imports(process(argv(), work, importtime=True)[2])
            runs = [process(argv(), work) for _ in range(args.repeat)]
            top = ", ".join(f"{p} {us / 1000:.0f}" for p, us in packages.most_common(args.top))
            counted = f" {instructions(argv(), work) / 1e6:,.0f} |" if args.instructions else ""
            print(
                f"| {name} | {total / 1000:.0f} | {statistics.median(c for _, c, _ in runs):.3f}"
                f" | {statistics.median(w for w, _, _ in runs):.3f} |{counted} {top} |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
